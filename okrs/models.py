"""OKRs: cycles, objectives, key results, check-ins and initiatives."""
