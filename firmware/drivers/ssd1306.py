# ssd1306.py - SSD1306 monochrome OLED over I2C, as a framebuf.FrameBuffer.
#
# Written from the Solomon Systech SSD1306 datasheet (rev 1.1), section 10 (command
# table) and the "software initialization" flow chart of its application note.
# The panel's GDDRAM is organised in pages of 8 rows; one byte is a vertical strip of
# 8 pixels, LSB at the top: exactly framebuf.MONO_VLSB, so show() sends the buffer as is.
#
# Duck typing: `i2c` needs writeto(addr, buf) and writevto(addr, bufs) (machine.I2C,
# machine.SoftI2C, or a test fake).

import framebuf
from micropython import const

# Fundamental / addressing / hardware configuration commands (datasheet table 9-1).
_CONTRAST = const(0x81)
_ENTIRE_ON_RESUME = const(0xA4)  # follow RAM (0xA5 would light every pixel)
_NORMAL = const(0xA6)  # 0xA7: inverse
_DISPLAY_OFF = const(0xAE)
_DISPLAY_ON = const(0xAF)
_MEM_MODE = const(0x20)  # + 0x00 horizontal addressing
_COL_ADDR = const(0x21)  # + start, end
_PAGE_ADDR = const(0x22)  # + start, end
_START_LINE = const(0x40)
_SEG_REMAP = const(0xA1)  # column 127 -> SEG0 (panel mounted "upside up")
_MUX_RATIO = const(0xA8)
_COM_SCAN_DEC = const(0xC8)
_DISP_OFFSET = const(0xD3)
_COM_PINS = const(0xDA)
_CLOCK_DIV = const(0xD5)
_PRECHARGE = const(0xD9)
_VCOM_DESEL = const(0xDB)
_CHARGE_PUMP = const(0x8D)

# I2C control byte (datasheet 8.1.5.2): Co=0, D/C#=0 -> commands; D/C#=1 -> data.
_CTRL_CMD = const(0x00)
_CTRL_DATA = const(0x40)


class SSD1306_I2C(framebuf.FrameBuffer):
    def __init__(self, width, height, i2c, addr=0x3C, external_vcc=False):
        self.width = width
        self.height = height
        self.pages = height // 8
        self.i2c = i2c
        self.addr = addr
        self.external_vcc = external_vcc
        self.buf = bytearray(self.pages * width)
        super().__init__(self.buf, width, height, framebuf.MONO_VLSB)
        self._cmd = bytearray(2)
        self._cmd[0] = _CTRL_CMD
        self._data = bytes((_CTRL_DATA,))
        # 64-column panels are wired to the middle of the 128 SEG outputs.
        self._col0 = (128 - width) // 2
        self.init_display()

    def cmd(self, c):
        self._cmd[1] = c
        self.i2c.writeto(self.addr, self._cmd)

    def init_display(self):
        # COM pins: sequential for 32-row panels, alternative for 64-row ones.
        com = 0x02 if self.height == 32 and self.width == 128 else 0x12
        for c in (
            _DISPLAY_OFF,
            _CLOCK_DIV, 0x80,  # default oscillator, divide ratio 1
            _MUX_RATIO, self.height - 1,
            _DISP_OFFSET, 0x00,
            _START_LINE | 0,
            _CHARGE_PUMP, 0x10 if self.external_vcc else 0x14,
            _MEM_MODE, 0x00,
            _SEG_REMAP,
            _COM_SCAN_DEC,
            _COM_PINS, com,
            _CONTRAST, 0x9F if self.external_vcc else 0xCF,
            _PRECHARGE, 0x22 if self.external_vcc else 0xF1,
            _VCOM_DESEL, 0x30,  # 0.83 x Vcc
            _ENTIRE_ON_RESUME,
            _NORMAL,
        ):  # fmt: skip
            self.cmd(c)
        self.fill(0)
        self.show()
        self.poweron()

    def poweroff(self):
        self.cmd(_DISPLAY_OFF)

    def poweron(self):
        self.cmd(_DISPLAY_ON)

    def contrast(self, c):
        self.cmd(_CONTRAST)
        self.cmd(c & 0xFF)

    def invert(self, on):
        self.cmd(_NORMAL | (1 if on else 0))

    def show(self):
        # Set the window to the whole panel; with horizontal addressing the column and
        # page pointers then wrap by themselves, so each page is one data transfer.
        c0 = self._col0
        for c in (_COL_ADDR, c0, c0 + self.width - 1, _PAGE_ADDR, 0, self.pages - 1):
            self.cmd(c)
        w = self.width
        mv = memoryview(self.buf)
        for p in range(self.pages):
            self.i2c.writevto(self.addr, (self._data, mv[p * w : (p + 1) * w]))
