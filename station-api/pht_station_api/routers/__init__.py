"""One router per resource; :mod:`pht_station_api.app` assembles them per listener."""
