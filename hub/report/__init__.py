"""The five-dimension staff report (`onewindow report`): staff.py computes, render.py writes."""
