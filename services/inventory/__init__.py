"""The inventory service: the customers' servers, their BMC bindings and server operations (power, reboot, reinstall)."""
