"""The POWER machine the kernel model runs on: topology (cores, threads,
split-core), the per-thread PACA area, the XICS interrupt presenter's MFRR,
interrupt vectors and guest-context interrupts, hardware threads' interrupt
and nap wiring (LPCR wake-up enables), per-core registers (LPIDR, HDEC), the
timebase and the OPAL firmware calls the kernel makes.

Everything here is hardware or firmware: it knows nothing of KVM's data
structures, and ``kvm/`` builds the kernel on top of it.
"""
