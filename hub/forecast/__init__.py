"""Forecasts: arrivals and staffing plans (onewindow plan), live wait prediction."""
