-- 0004: reserved for the sweep branch (sweeps table); a placeholder so that this branch's migration 0005 has contiguous predecessors. Delete at merge.

