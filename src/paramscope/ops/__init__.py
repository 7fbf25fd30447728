"""Operations on a Report: explain (and, to come, freeze, audit, memory, diff)."""
