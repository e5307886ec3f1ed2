from hostctl.app import main

main()
