"""The Redis adapters: the only modules that import ``redis``. Each implements a port of the
packages below (``state.customer.store``, ``state.customer.profile_store``, the analytics stores)
with Lua scripts for the atomic folds."""
