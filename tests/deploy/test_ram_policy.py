"""deploy/ram-policy.json grants exactly what the deployed code calls (plus the async destination s.yaml names),
on the documented resource placeholders.

"What the code calls" is read from the source: in every deployed module that imports a cloud SDK, the SDK's API
methods it names (as an attribute, a name, or a string such as "get_batch_with_options" handed to getattr) are
mapped to their RAM actions. A method the map does not know fails the test, so a new call cannot slip past the
policy. Generic calls (the SDK core's `call_api`, which imm.py uses) name their API by its action string
("UpdateBatch"): in a module that uses `call_api`, every string that is an IMM API name counts as a call.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
POLICY = json.loads((ROOT / "deploy" / "ram-policy.json").read_text())
PLACEHOLDERS = {
    "region",
    "imm_region",
    "account_id",
    "imm_project",
    "trigger_bucket",
    "trigger_prefix",
    "result_topic",
    "result_function",
    "dead_letter_queue",
    "work_queue",
    "schedule_bucket",
    "schedule_key",
}
DESTINATION_SID = "AsyncOnFailureDestination"
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")  # method names ("update_batch_with_options") and actions ("UpdateBatch")


def camel(snake: str) -> str:
    return "".join(p.capitalize() for p in snake.split("_"))


def _pop_suffixes(name: str) -> str:
    for suffix in ("_async", "_with_options"):
        name = name.removesuffix(suffix)
    return name


def sdk_vocabularies() -> dict[str, dict[str, str | None]]:
    """SDK top-level module -> {method name: RAM action, or None for methods that make no API call}."""
    from alibabacloud_fc20230330.client import Client as Fc3
    from alibabacloud_imm20200930.client import Client as Imm
    from alibabacloud_tea_openapi.client import Client as OpenApi

    base = set(dir(OpenApi))
    imm = {m: f"imm:{camel(_pop_suffixes(m))}" for m in dir(Imm) if m not in base and not m.startswith("_")}
    fc3 = {m: f"fc:{camel(_pop_suffixes(m))}" for m in dir(Fc3) if m not in base and not m.startswith("_")}

    import fc2
    import oss2
    from mns.account import Account
    from mns.queue import Queue
    from mns.topic import Topic

    fc2_methods = {m: f"fc:{camel(m)}" for m in dir(fc2.Client) if not m.startswith("_")}
    fc2_methods.update(invoke_function="fc:InvokeFunction", do_http_request="fc:InvokeFunction")
    mns_known = {
        "publish_message": "mns:PublishMessage",
        "send_message": "mns:SendMessage",
        # MNS documents both: its BatchSendMessage page names mns:BatchSendMessage, its RAM mapping table
        # (help.aliyun.com/zh/mns/b3asrm) "SendMessage or BatchSendMessage -> mns:SendMessage". Granted both.
        "batch_send_message": ("mns:SendMessage", "mns:BatchSendMessage"),
        "receive_message": "mns:ReceiveMessage",
        "batch_receive_message": "mns:ReceiveMessage",
        "delete_message": "mns:DeleteMessage",
        "batch_delete_message": "mns:DeleteMessage",
    }
    mns_local = {
        "debuginfo",
        "set_debug",
        "set_encoding",
        "get_topic",
        "get_queue",
        "get_client",
        "set_client",
        "close_log",
        "set_log_level",
        "get_subscription",
    }
    mns: dict[str, str | None] = {}
    for cls in (Topic, Queue, Account):
        for m in dir(cls):
            if not m.startswith("_"):
                mns[m] = None if m in mns_local else mns_known.get(m, f"UNMAPPED mns {m}")
    oss_reads = {
        "get_object",
        "get_object_to_file",
        "get_object_meta",
        "head_object",
        "object_exists",
        "get_object_with_url",
        "get_object_with_url_to_file",
    }
    oss: dict[str, str | None] = {}
    for m in dir(oss2.Bucket):
        if not m.startswith("_") and callable(getattr(oss2.Bucket, m)):
            oss[m] = "oss:GetObject" if m in oss_reads else f"UNMAPPED oss2 {m}"
    # Generic calls through the SDK core: the action names of the product's API, e.g. "UpdateBatch".
    imm_actions = {action.split(":", 1)[1]: action for action in imm.values()}
    return {
        "alibabacloud_tea_openapi": imm_actions,
        "alibabacloud_imm20200930": imm,
        "alibabacloud_fc20230330": fc3,
        "fc2": fc2_methods,
        "mns": mns,
        "oss2": oss,
    }


def deployed_modules() -> list[Path]:
    from tests.deploy.ignore_walk import packaged_files

    return [ROOT / p for p in packaged_files(ROOT) if p.endswith(".py") and not p.startswith("python/")]


def names_in(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and IDENTIFIER.fullmatch(node.value):
            found.add(node.value)
    return found


def imported_sdks(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def actions_called_by_code() -> dict[str, set[str]]:
    """RAM action -> the modules that need it."""
    vocabularies = sdk_vocabularies()
    used: dict[str, set[str]] = {}
    for path in deployed_modules():
        tree = ast.parse(path.read_text())
        names = names_in(tree)
        sdks = imported_sdks(tree) & set(vocabularies)
        if "call_api" not in names:
            sdks.discard("alibabacloud_tea_openapi")  # only generic calls name their API by an action string
        for sdk in sdks:
            for method in names & set(vocabularies[sdk]):
                actions = vocabularies[sdk][method]
                for action in (actions,) if isinstance(actions, str) else actions or ():
                    used.setdefault(action, set()).add(path.relative_to(ROOT).as_posix())
    return used


def policy_actions(include_destination: bool = True) -> set[str]:
    return {
        a for s in POLICY["Statement"] if include_destination or s.get("Sid") != DESTINATION_SID for a in s["Action"]
    }


def test_policy_shape():
    assert POLICY["Version"] == "1"
    for statement in POLICY["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Sid"]
        assert all("*" not in a for a in statement["Action"]), "no wildcard actions"
        for resource in statement["Resource"]:
            assert resource != "*" and resource.startswith("acs:")
            assert set(re.findall(r"\{(\w+)\}", resource)) <= PLACEHOLDERS, resource


def test_imm_resource_is_the_projects_batches():
    [imm] = [s for s in POLICY["Statement"] if any(a.startswith("imm:") for a in s["Action"])]
    assert imm["Resource"] == ["acs:imm:{imm_region}:{account_id}:project/{imm_project}/batch/*"]
    assert set(imm["Action"]) == {"imm:GetBatch", "imm:UpdateBatch", "imm:ResumeBatch", "imm:ListBatches"}


def test_every_sdk_call_in_the_code_is_granted():
    used = actions_called_by_code()
    unmapped = {a: m for a, m in used.items() if a.startswith("UNMAPPED")}
    assert not unmapped, f"map these SDK methods to RAM actions: {unmapped}"
    missing = {a: sorted(m) for a, m in used.items() if a not in policy_actions(include_destination=False)}
    assert not missing, f"the code calls, the policy does not grant: {missing}"
    assert {"imm:UpdateBatch", "mns:PublishMessage", "fc:InvokeFunction"} <= set(used)


def test_the_policy_grants_nothing_the_code_does_not_call():
    if not (ROOT / "imm_batch_updater" / "oss_reader.py").exists():
        pytest.skip("imm_batch_updater/oss_reader.py (the OSS trigger's reader) is not in the tree yet")
    used = set(actions_called_by_code())
    assert policy_actions(include_destination=False) == used


def test_the_destination_statement_matches_s_yaml():
    spec = yaml.safe_load((ROOT / "s.yaml").read_text())
    [resource] = spec["resources"].values()
    destination = resource["props"]["asyncInvokeConfig"]["destinationConfig"]["onFailure"]["destination"]
    assert "/queues/" in destination  # an MNS queue: FC sends with the function's role -> mns:SendMessage
    [statement] = [s for s in POLICY["Statement"] if s["Sid"] == DESTINATION_SID]
    assert statement["Action"] == ["mns:SendMessage"]
    assert statement["Resource"] == ["acs:mns:{region}:{account_id}:/queues/{dead_letter_queue}/messages"]


def test_the_scan_finds_generic_calls_by_action_name():
    """The scan must see `client.call_api(Params(action="UpdateBatch", ...))` (how imm.py calls IMM)."""
    tree = ast.parse("from alibabacloud_tea_openapi.client import Client\nc.call_api(p('UpdateBatch'), r, o)\n")
    assert "UpdateBatch" in names_in(tree)
    assert sdk_vocabularies()["alibabacloud_tea_openapi"]["UpdateBatch"] == "imm:UpdateBatch"
    used = actions_called_by_code()
    assert used["imm:UpdateBatch"] == {"imm_batch_updater/imm.py"}


def test_the_scan_finds_calls_made_through_getattr_strings(tmp_path):
    """The scan must see `getattr(client, "update_batch_with_options")` (how product-SDK calls can be named)."""
    tree = ast.parse("from alibabacloud_imm20200930.client import Client\nm = 'update_batch_with_options'\n")
    assert "update_batch_with_options" in names_in(tree)
    assert sdk_vocabularies()["alibabacloud_imm20200930"]["update_batch_with_options"] == "imm:UpdateBatch"


def test_calls_recorded_end_to_end_are_granted(fn_env, invoke, emu):
    """Every call the function makes against the emulator (IMM + MNS sink) is an action the policy grants."""
    from tests.conftest import FAILED, PROJECT

    emu.mns.create_topic("results")
    fn_env.setenv("RESULT_MNS_TOPIC", "results")
    fn_env.setenv("RESULT_MNS_ENDPOINT", emu.url)
    invoke.direct({"ProjectName": PROJECT, "Id": FAILED, "Tags": {"a": "b"}, "Resume": True})
    service_prefix = {"imm": "imm", "mns": "mns", "oss": "oss"}
    actions = {f"{service_prefix[c.service]}:{c.action}" for c in emu.calls()}
    assert actions == {"imm:GetBatch", "imm:UpdateBatch", "imm:ResumeBatch", "mns:PublishMessage"}
    assert actions <= policy_actions()


def test_placeholders_are_documented():
    docs = (ROOT / "docs" / "deploy.md").read_text()
    for name in PLACEHOLDERS:
        assert f"`{{{name}}}`" in docs, name


def documented_fill() -> dict[str, str]:
    """The placeholders docs/deploy.md's `sed` (section 2, step 1) fills in, and their values."""
    docs = (ROOT / "docs" / "deploy.md").read_text()
    return {name: value for _, name, value in re.findall(r"-e 's([/#])\{(\w+)\}\1([^']*?)\1g'", docs)}


def test_the_documented_sed_fills_every_placeholder():
    used = {name for s in POLICY["Statement"] for r in s["Resource"] for name in re.findall(r"\{(\w+)\}", r)}
    assert used <= set(documented_fill()), used - set(documented_fill())


def test_imm_in_another_region_than_the_function_gets_a_policy_for_both():
    """IMM_REGION moves IMM's endpoint alone (README, docs/deploy.md): with IMM in ap-southeast-1 and the function
    in cn-hangzhou, the IMM statement must name IMM's region and the queue, topic, function and destination
    statements the function's. With one `{region}` for both, the documented fill gave the IMM statement the
    function's region, and every IMM call was refused (NoPermission)."""
    fill = {name: name.replace("_", "-") for name in PLACEHOLDERS}
    fill["region"] = "cn-hangzhou"
    fill["imm_region"] = "ap-southeast-1"
    text = json.dumps(POLICY)
    for name, value in fill.items():
        text = text.replace("{" + name + "}", value)
    statements = {s["Sid"]: s["Resource"] for s in json.loads(text)["Statement"]}
    assert statements["ImmBatches"] == ["acs:imm:ap-southeast-1:account-id:project/imm-project/batch/*"]
    for sid in ("FanOutToWorkQueue", "PublishOutcomes", "InvokeResultFunction", "AsyncOnFailureDestination"):
        assert all(r.split(":")[2] == "cn-hangzhou" for r in statements[sid]), sid
