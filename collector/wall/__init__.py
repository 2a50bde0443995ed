"""The operations center's wall: pages, live feed and offline assets served by the
collector's API."""
