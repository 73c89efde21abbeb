"""The centre's fleet: provisioned devices, their broker credentials and the broker's rules
(`onewindow provision`, `onewindow broker-config`)."""
