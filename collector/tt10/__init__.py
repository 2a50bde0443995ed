"""Sending the Circular 10/2021 station data files to the provincial authority: the
ledger of what was sent (`ledger.py`) and the uploader that sends it (`upload.py`)."""
