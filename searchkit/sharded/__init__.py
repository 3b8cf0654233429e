"""Scale-out on Ray (the ``cluster`` extra): distributed rebuild and sharded serving."""
