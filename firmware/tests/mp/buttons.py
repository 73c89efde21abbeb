# ui.Buttons against scripted pin levels: bounce, glitches, IRQ wake-up, queue bound.
import asyncio
import json
import time

from ow import ui


class Pin:
    def __init__(self):
        self.v = 0

    def value(self):
        return self.v


async def drive(pin, pattern, irq=None):
    # pattern: [(level, ms), ...]
    for level, ms in pattern:
        pin.v = level
        if irq is not None:
            irq()
        await asyncio.sleep_ms(ms)


async def count_presses(pattern, use_irq=False):
    pin = Pin()
    handlers = []
    b = ui.Buttons({"k": pin}, 5, handlers.append if use_irq else None)
    task = asyncio.create_task(b.scan())
    await drive(pin, pattern, handlers[0] if handlers else None)
    await asyncio.sleep_ms(60)
    task.cancel()
    return len(b._q), b


async def latency():
    pin = Pin()
    handlers = []
    b = ui.Buttons({"k": pin}, 50, handlers.append)  # slow polling: only the IRQ is fast
    task = asyncio.create_task(b.scan())
    await asyncio.sleep_ms(20)
    t0 = time.ticks_ms()
    pin.v = 1
    handlers[0]()
    await b.next()
    dt = time.ticks_diff(time.ticks_ms(), t0)
    task.cancel()
    return dt


async def main():
    out = {}
    bounce = [(1, 1), (0, 1), (1, 1), (0, 1), (1, 80), (0, 1), (1, 1), (0, 80)]
    out["bounce"] = (await count_presses(bounce))[0]
    out["bounce_irq"] = (await count_presses(bounce, True))[0]
    out["glitch"] = (await count_presses([(1, 1), (0, 80)]))[0]
    out["two"] = (await count_presses([(1, 60), (0, 60), (1, 60), (0, 60)]))[0]
    n, b = await count_presses([(1, 40), (0, 40)] * 12)
    out["bounded"] = [n, b.dropped]
    out["irq_ms"] = await latency()
    print(json.dumps(out))


asyncio.run(main())
