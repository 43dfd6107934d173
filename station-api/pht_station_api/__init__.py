"""The station API: the only door between an algorithm and the data, and the only way out.

Two listeners share one :class:`~pht_station_api.state.StationState`: the *internal* app
(operator registration, the SPARQL gateway, progress, uploads) and the *external* app (FAIR Data
Point, steward and requester actions). See ``docs/station-api.md``.
"""
