"""`freeze`: a plan's before and after per role, the layers it changes, and the code."""
