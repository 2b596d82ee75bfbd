"""targets: declarative descriptions of deployment targets (numerics, throughput, memory, energy, toolchain).

Empty until the targets issue lands; the C code generator currently has one family, ``generic`` (host gcc).
"""
