"""50 real SDK clients at once: no lost updates, no torn batches, no mixed-up answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alibabacloud_imm20200930 import models as m

P = "demo-project"
WORKERS = 50


def test_fifty_concurrent_clients(emu, make_client):
    shared = emu.imm.create_batch(P, id="batch-shared", tags={"writer": "none"})

    def work(i: int) -> tuple[str, dict, str]:
        client = make_client()
        own = client.create_batch(
            m.CreateBatchRequest(
                project_name=P,
                input=m.Input(oss=m.InputOSS(bucket="demo-bucket", prefix=f"w{i}/")),
                actions=[m.CreateBatchRequestActions(name="doc/convert", parameters=[f"worker={i}"])],
                tags={"worker": i},
            )
        ).body.id
        client.update_batch(m.UpdateBatchRequest(project_name=P, id=own, tags={"worker": i, "updated": True}))
        client.update_batch(m.UpdateBatchRequest(project_name=P, id=shared, tags={"writer": f"w{i}", "seq": i}))
        mine = client.get_batch(m.GetBatchRequest(project_name=P, id=own)).body.batch.to_map()
        seen = client.get_batch(m.GetBatchRequest(project_name=P, id=shared)).body.batch.tags
        return own, mine, seen["writer"]

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(work, range(WORKERS)))

    own_ids = [own for own, _, _ in results]
    assert len(set(own_ids)) == WORKERS
    for i, (own, mine, seen_writer) in enumerate(results):
        assert mine["Id"] == own
        assert mine["Tags"] == {"worker": i, "updated": True}
        assert mine["Input"]["OSS"]["Prefix"] == f"w{i}/"
        assert seen_writer.startswith("w")
    final = emu.imm.get_batch(P, shared)["Tags"]
    assert final["writer"] == f"w{final['seq']}"  # one whole update won, never a mix of two
    assert len(emu.calls(service="imm")) == WORKERS * 5
    assert all(r.status == 200 for r in emu.calls(service="imm"))
    listed = make_client().list_batches(m.ListBatchesRequest(project_name=P, max_results=100)).body.batches
    assert {b.id for b in listed} >= set(own_ids) | {shared}
