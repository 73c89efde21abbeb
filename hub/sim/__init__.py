"""The centre simulator (stage 5): arrivals with known effects, service times, window
layouts, a SimPy engine whose decisions are the real dispatch core's, metrics, and synthetic
history written into the hub's journal. `onewindow sim` is its command line."""
