"""Hub-side rendering: printed tickets as ESC/POS bytes, Chinese text as 1-bit bitmaps.

The boards are too small to hold a CJK font or an ESC/POS layout engine, so the hub
does that work and sends them bytes they can forward (printer) or blit (framebuf).
"""
