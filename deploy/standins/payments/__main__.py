"""``python -m deploy.standins.payments``: run the payments sandbox."""

from deploy.standins.payments import main

main()
