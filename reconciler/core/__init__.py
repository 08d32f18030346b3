"""The pure core: load, validate, desire, diff, plan, render. No I/O, no clock."""
