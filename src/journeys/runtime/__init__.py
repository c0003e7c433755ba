"""The runtime: pure decisions (decide), local time (timecalc) and the batch engine."""
