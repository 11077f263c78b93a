"""Fleet: `xenaudit merge` joins many Dom0s' report folders into one fleet report.

`interface.py` holds the contracts (digests, rows, `FleetFormat`, errors);
`reader.py` reads one report folder strictly, `actions.py` turns its domains
into action rows, `copy.py` copies a folder without trusting it, `spool.py`
keeps rows on disk, `merge.py` runs the merge, `json.py` and `html.py` write
fleet.json and fleet.html, `cli.py` is the `merge` command.
"""
