"""The CPU feature flags Linux reports, for tests that expect a kernel where the CPU has its features."""


def cpu_flags() -> set[str]:
    """The names on /proc/cpuinfo's first "flags" (x86) or "Features" (Arm) line; empty where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return set()
