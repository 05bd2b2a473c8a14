"""vcoresim: an executable, checkable model of KVM on IBM POWER (Book3S HV)."""

__version__ = "0.1.0"
