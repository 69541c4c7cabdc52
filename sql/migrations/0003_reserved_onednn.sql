-- 0003: reserved for the onednn branch (engine column); a placeholder so that this branch's migration 0005 has contiguous predecessors. Delete at merge.

