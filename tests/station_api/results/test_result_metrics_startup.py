"""Result metrics are exported from the first scrape, before any upload."""

from pathlib import Path

from prometheus_client import generate_latest

from pht_station_api.settings import Settings
from pht_station_api.state import build_state


async def test_result_metrics_exist_before_the_first_upload(tmp_path: Path) -> None:
    state = build_state(
        Settings(store=tmp_path / "store", state_dir=tmp_path / "state", station_name="s1")
    )
    await state.start()
    try:
        text = generate_latest(state.metrics.registry).decode()
    finally:
        await state.close()
    assert 'pht_uploads_total{station="s1"} 0.0' in text
    assert 'pht_results_held{station="s1"} 0.0' in text
