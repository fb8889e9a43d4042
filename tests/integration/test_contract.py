"""The published contract: generated code is fresh and REST paths map exactly."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTORS = ROOT / "gen" / "xmp_posts_v1.binpb"


def test_gen_is_what_the_script_produces(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate_protos.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    comparison = filecmp.dircmp(ROOT / "gen", out, ignore=["__pycache__"])

    def differences(cmp: filecmp.dircmp[str], prefix: str = "") -> list[str]:
        found = [prefix + name for name in cmp.left_only + cmp.right_only + cmp.diff_files]
        # dircmp compares shallowly by stat; compare bytes to be sure.
        found += [
            prefix + name
            for name in cmp.same_files
            if (Path(cmp.left) / name).read_bytes() != (Path(cmp.right) / name).read_bytes()
        ]
        for name, sub in cmp.subdirs.items():
            found += differences(sub, f"{prefix}{name}/")
        return found

    assert differences(comparison) == [], "gen/ is stale: run `make generate`"


def _methods() -> dict[str, descriptor_pb2.MethodDescriptorProto]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes())
    methods = {}
    for file in files.file:
        if file.package != "xmp.posts.v1":
            continue
        for service in file.service:
            for method in service.method:
                methods[f"{service.name}.{method.name}"] = method
    return methods


def _rule(method: descriptor_pb2.MethodDescriptorProto) -> tuple[str, str, str]:
    rule = method.options.Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    assert verb is not None
    return verb.upper(), getattr(rule, verb), rule.body


CONTRACT = {
    "PostSchedulingService.SchedulePost": ("POST", "/api/posts/{post_id}/schedule", "*"),
    "PostSchedulingService.ListScheduledPosts": ("GET", "/api/posts/{user_id}/scheduled", ""),
    "PostSchedulingService.CancelSchedule": ("DELETE", "/api/posts/{post_id}/schedule", "*"),
    "PublishingService.PublishPost": ("POST", "/api/posts/{post_id}/publish", "*"),
    "AnalyticsService.GetPostMetrics": ("GET", "/api/posts/{post_id}/metrics", ""),
    "AnalyticsService.GetPostAnalytics": ("GET", "/api/posts/{post_id}/analytics", ""),
    "AnalyticsService.GetUserStats": ("GET", "/api/posts/{user_id}/stats", ""),
    "ServiceInfoService.GetHealth": ("GET", "/health", ""),
    "ServiceInfoService.GetReadiness": ("GET", "/ready", ""),
    "ServiceInfoService.GetInfo": ("GET", "/info", ""),
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_rest_paths_of_the_contract_are_mapped_exactly(name: str) -> None:
    assert _rule(_methods()[name]) == CONTRACT[name]


def test_every_rpc_has_an_http_rule() -> None:
    methods = _methods()
    assert {name.split(".")[0] for name in methods} == {
        "PostService",
        "PostSchedulingService",
        "PublishingService",
        "AnalyticsService",
        "AccountService",
        "CampaignService",
        "ServiceInfoService",
    }
    for name, method in methods.items():
        assert method.options.HasExtension(annotations_pb2.http), name


def test_json_names_of_the_contract_bodies_and_queries() -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes())
    messages = {
        message.name: {field.json_name for field in message.field}
        for file in files.file
        if file.package == "xmp.posts.v1"
        for message in file.message_type
    }
    assert {"userId", "scheduledFor", "timezone", "priority"} <= messages["SchedulePostRequest"]
    assert {"userId", "accountId", "immediatePublish", "overrideSchedule"} <= messages[
        "PublishPostRequest"
    ]
    assert {"limit", "offset", "fromDate", "toDate"} <= messages["ListScheduledPostsRequest"]
    assert "userId" in messages["CancelScheduleRequest"]


def test_buf_lint_passes() -> None:
    buf = Path(sys.executable).parent / "buf"
    result = subprocess.run([str(buf), "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
