# Runs the device behaviour vectors (vectors/device.json) against ow_device. Works on CPython
# and on MicroPython, so the boards' runtime, the Pi node and the simulated device are held
# to the same behaviour:
#   micropython check_device.py <vectors-dir>   (with MICROPYPATH naming protocol/)
# It prints one line per failure and a closing "N passed, N failed" line.
#
# A vector is a device (its config) and steps: an input at a time `at` (ms) and the outputs
# expected of it: first what the input stored ("save" of a seq mark, "save_book"), then the
# actions it returned, each as JSON: topics by their leaf (ow_device.STATUS ...), payloads
# decoded and without "v" (every payload is checked to carry it: decode does).

import json
import sys


class _Run:
    def __init__(self, D, spec):
        self.D = D
        self.spec = spec
        self.out = []
        self.mark = spec.get("seq", 0)
        self.book_state = spec.get("book_state")  # what flash held at the first boot
        self.make(0)

    def make(self, now):
        """A (re)booted device: what storage kept, nothing else."""
        D, s, run = self.D, self.spec, self

        def save(mark):
            run.mark = mark
            run.out.append(["save", mark])

        class Book(D.Book):
            def save(self):
                # A copy, as flash would hold it: later changes in memory are not in it.
                run.book_state = json.loads(json.dumps(self.state()))
                run.out.append(["save_book"])

        self.dev = dev = D.Device(s["centre"], s["dev"], s["role"], now, seq=self.mark,
                                  save=save, fw=s.get("fw", ""), board=s.get("board", ""),
                                  window=s.get("window"), retry_ms=s.get("retry_ms", D.RETRY_MS),
                                  recent=s.get("recent", D.RECENT))
        dev.runs = s.get("runs", [])
        if s.get("book"):
            dev.book = Book(self.book_state)
        self.leaves = {dev.t_status: D.STATUS, dev.t_evt: D.EVT, dev.t_ack: D.ACK}
        for t, kind in dev.inbound.items():
            self.leaves[t] = kind
        self.topics = {}
        for t, leaf in self.leaves.items():
            self.topics[leaf] = t

    def msg(self, kind, payload):
        m = self.D.P.decode(kind, payload)
        del m["v"]
        return m

    def action(self, a):
        D = self.D
        tag = a[0]
        if tag == D.PUB:
            leaf = self.leaves[a[1]]
            return [tag, leaf, self.msg(leaf, a[2]), a[3]]
        if tag == D.SUB:
            return [tag, self.leaves[a[1]]]
        if tag == D.SEND:
            return [tag, a[1], self.msg(D.EVT, a[2])]
        out = list(a)
        for i, x in enumerate(out):
            if isinstance(x, dict) and "v" in x:
                out[i] = dict(x)
                del out[i]["v"]
        return out

    def step(self, st):
        D, dev, now, do = self.D, self.dev, st["at"], st["do"]
        self.out = []
        got = None
        if do == "connect":
            got = dev.connect(now)
        elif do == "will":
            t, payload = dev.will()
            got = [["will", self.leaves[t], self.msg(D.STATUS, payload)]]
        elif do == "reboot":
            self.make(now)
        elif do == "next_seq":
            got = [["seq", dev.next_seq()]]
        elif do == "event":
            got = dev.event(st["type"], now, st.get("timeout", D.TIMEOUT_MS), st.get("seq"),
                            **st.get("fields", {}))
        elif do == "send":
            got = dev.send(st["seq"], st["payload"].encode(), now, st.get("timeout", D.TIMEOUT_MS))
        elif do == "puback":
            dev.puback(st["seq"], now)
        elif do == "tick":
            got = dev.tick(now, st.get("seq"))
        elif do == "wait":
            got = [["wait", dev.wait_ms(now, st.get("seq"))]]
        elif do == "message":
            if "payload" in st:
                payload = st["payload"].encode()
            elif "msg" in st:
                m = dict(st["msg"])
                m["v"] = D.P.VERSION
                payload = json.dumps(m).encode()
            else:
                payload = b""
            topic = self.topics.get(st["leaf"], st["leaf"])
            try:
                got = dev.message(topic, payload, now)
            except D.P.ProtocolError as e:
                got = [["raises", e.code]]
            if got is None:
                got = [["not_mine"]]
        elif do == "done":
            got = dev.done(st["id"], st["ok"], st.get("code"))
        elif do == "alerts":
            got = dev.set_alerts(st["alerts"], now)
        elif do == "clock":
            got = [["clock", dev.clock(now)]]
        elif do == "ttl":
            got = [["ttl_over", D.expired({"ttl": st["ttl"]}, st["waited"])]]
        elif do == "blocks":
            dev.book.set_blocks(st["blocks"], st["day"], st.get("head", ""))
        elif do == "offline":
            got = [["number", dev.book.issue(st["prefix"], st["item"], st["taken_at"],
                                             st.get("for_seq"), st.get("priority"))]]
        elif do == "submission":
            got = [["take", dev.book.submission()]]
        elif do == "joined":
            dev.book.done(st["number"])
        else:
            raise ValueError("unknown step " + do)
        for a in got or ():
            self.out.append(self.action(a))
        return self.out


def run(D, vectors_dir):
    with open(vectors_dir + "/device.json") as f:
        vectors = json.load(f)
    passed = 0
    failures = []
    for v in vectors:
        r = _Run(D, v["device"])
        for i, st in enumerate(v["steps"]):
            got = r.step(st)
            if got != st.get("out", []):
                failures.append("%s, step %d (%s at %d): got %s, expected %s" % (
                    v["name"], i, st["do"], st["at"], json.dumps(got), json.dumps(st.get("out"))))
                break
        else:
            passed += 1
    return passed, failures


def main():
    # Run as a script, so its folder is on the path (MicroPython puts it first too).
    import ow_device
    from check_vectors import report

    report(*run(ow_device, sys.argv[1]))


if __name__ == "__main__":
    main()
