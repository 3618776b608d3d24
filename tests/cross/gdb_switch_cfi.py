# Checks the CFI of crew__ctx_switch instruction by instruction, as a
# debugger or a sampling profiler sees it. Run by gdb_switch_cfi.sh on the
# self-test (one check, in-process):
#   gdb -batch -x gdb_switch_cfi.py --args switch_selftest fiber_to_fiber
#
# At every instruction of every switch it unwinds one frame and records the
# caller's registers as the unwinder computes them (callee-saved registers,
# stack pointer, return address). Before the stack-pointer exchange they must
# be those of the context that called the switch; from the exchange on, those
# of the context being resumed, which the registers hold once the switch has
# returned. It also checks that every backtrace ends cleanly: at main on the
# thread's stack, at crew__ctx_trampoline on a fiber's, with no unknown frame.
import gdb

REGS = {
    "i386:x86-64": ["rbx", "rbp", "r12", "r13", "r14", "r15", "rsp", "pc"],
    "aarch64": ["x%d" % i for i in range(19, 30)] + ["d%d" % i for i in range(8, 16)] + ["sp", "pc"],
}
ENDS = ("main", "crew__ctx_trampoline")
# Backtraces stop at main (gdb hides what is past it) or at the trampoline,
# whose return address is undefined: the outermost frame.
CLEAN_STOPS = (gdb.FRAME_UNWIND_NO_REASON, gdb.FRAME_UNWIND_OUTERMOST)
MAX_FRAMES = 64
MAX_SWITCH_INSNS = 128

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def reg(frame, name):
    """The register as unwound in frame, or None if the unwinder cannot tell."""
    try:
        v = frame.read_register(name)
        if v.is_optimized_out:
            return None
        if v.type.code == gdb.TYPE_CODE_UNION:  # aarch64 d8-d15
            v = v["u"]
        return int(v)
    except gdb.error:
        return None


def snapshot(frame, regs):
    return tuple(reg(frame, r) for r in regs)


def check_chain(where):
    """The backtrace from the newest frame ends at main or the trampoline."""
    frame = gdb.newest_frame()
    names = []
    while frame is not None and len(names) < MAX_FRAMES:
        names.append(frame.name())
        last = frame
        frame = frame.older()
    if None in names:
        fail("%s: unknown frame in backtrace %s" % (where, names))
    elif names[-1] not in ENDS:
        fail("%s: backtrace %s does not end at %s" % (where, names, " or ".join(ENDS)))
    reason = last.unwind_stop_reason()
    if reason not in CLEAN_STOPS:
        fail("%s: backtrace %s stopped with an error: %s"
             % (where, names, gdb.frame_stop_reason_string(reason)))


def switch_range(entry):
    """[entry, end) of crew__ctx_switch: up to and including its ret."""
    arch = gdb.newest_frame().architecture()
    for insn in arch.disassemble(entry, count=MAX_SWITCH_INSNS):
        if insn["asm"].split()[0] in ("ret", "retq"):
            return insn["addr"] + insn["length"]
    raise gdb.GdbError("no ret in crew__ctx_switch")


def fmt(names, snap):
    return ", ".join("%s=%s" % (n, "?" if v is None else hex(v)) for n, v in zip(names, snap))


def check_switch(n, regs, entry, end):
    before = snapshot(gdb.newest_frame().older(), regs)
    steps = []
    while True:
        frame = gdb.newest_frame()
        pc = frame.pc()
        if not entry <= pc < end:
            break
        check_chain("switch %d at %#x" % (n, pc))
        caller = frame.older()
        steps.append((pc, None if caller is None else snapshot(caller, regs)))
        if len(steps) > MAX_SWITCH_INSNS:
            raise gdb.GdbError("switch %d never returned" % n)
        gdb.execute("stepi", to_string=True)
    after = snapshot(gdb.newest_frame(), regs)
    # A prefix of the steps unwinds to the switching context, the rest to the
    # resumed one.
    i = 0
    while i < len(steps) and steps[i][1] == before:
        i += 1
    while i < len(steps) and steps[i][1] == after:
        i += 1
    if i < len(steps):
        pc, snap = steps[i]
        fail("switch %d at %#x (+%d): caller unwound as\n    %s\n  expected the switching context\n"
             "    %s\n  or the resumed one\n    %s"
             % (n, pc, pc - entry, fmt(regs, snap), fmt(regs, before), fmt(regs, after)))
    return len(steps)


def main():
    gdb.execute("set pagination off")
    gdb.execute("set confirm off")
    gdb.execute("set suppress-cli-notifications on")
    gdb.Breakpoint("*crew__ctx_switch", internal=True)
    gdb.execute("run" if not gdb.selected_inferior().pid else "continue", to_string=True)
    regs = None
    n = 0
    while gdb.selected_inferior().pid:
        try:
            frame = gdb.newest_frame()
        except gdb.error:
            break
        if regs is None:
            arch = frame.architecture().name()
            if arch not in REGS:
                raise gdb.GdbError("unsupported architecture " + arch)
            regs = REGS[arch]
            entry = frame.pc()
            end = switch_range(entry)
        n += 1
        insns = check_switch(n, regs, entry, end)
        print("switch %d: %d instructions checked" % (n, insns))
        gdb.execute("continue", to_string=True)
    code = gdb.parse_and_eval("$_exitcode")
    if n == 0:
        fail("crew__ctx_switch was never called")
    if code.type.code == gdb.TYPE_CODE_VOID or int(code) != 0:
        fail("the program did not exit with status 0")
    print("%d switches, %d failures" % (n, len(failures)))
    gdb.execute("quit %d" % (1 if failures else 0))


try:
    main()
except Exception as e:  # Any error in the script fails the check.
    print("FAIL: %s: %s" % (type(e).__name__, e))
    gdb.execute("quit 1")
