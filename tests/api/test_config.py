"""The api configuration section and ``kordon token create``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from api import cli
from api.auth import Role, TokenBook, hash_token
from api.problems import Problem
from kordon.config import ConfigError, Settings, load_settings


def _load(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "kordon.yaml"
    path.write_text(text)
    return load_settings(path, env)


def test_tokens_are_configured_by_hash(tmp_path: Path) -> None:
    digest = hash_token("kdn_secret")
    settings = _load(
        tmp_path,
        f"api:\n  tokens:\n    - {{name: ops, role: operator, sha256: {digest.upper()}}}\n",
    )
    assert settings.api.tokens[0].sha256 == digest
    principal = TokenBook(settings.api.tokens).authenticate("Bearer kdn_secret")
    assert principal.name == "ops" and principal.role is Role.OPERATOR
    with pytest.raises(Problem) as refused:
        TokenBook(settings.api.tokens).authenticate(f"Bearer {digest}")  # the hash is no token
    assert refused.value.status == 401


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (
            "api:\n  tokens:\n    - {name: a, role: boss, sha256: %s}\n",
            "api.tokens.0.role",
            "viewer",
        ),
        (
            "api:\n  tokens:\n    - {name: a, role: admin, sha256: kdn_plain}\n",
            "api.tokens.0.sha256",
            "never the token itself",
        ),
        ("api:\n  cors_origins: [ops.example.org]\n", "api.cors_origins", "scheme://host"),
        ("api:\n  addr: localhost\n", "api.addr", "host:port"),
        ("api:\n  refresh_interval: soon\n", "api.refresh_interval", "invalid duration"),
        ("api:\n  tokenz: []\n", "api.tokenz", "unknown key"),
    ],
)
def test_bad_api_settings_name_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text.replace("%s", hash_token("x")))
    assert key in str(error.value) and words in str(error.value)


def test_duplicate_token_hashes_are_refused(tmp_path: Path) -> None:
    digest = hash_token("same")
    text = (
        "api:\n  tokens:\n"
        f"    - {{name: a, role: admin, sha256: {digest}}}\n"
        f"    - {{name: b, role: viewer, sha256: {digest}}}\n"
    )
    with pytest.raises(ConfigError, match=r"api\.tokens: .*same hash"):
        _load(tmp_path, text)


def test_addr_from_environment(tmp_path: Path) -> None:
    settings = _load(tmp_path, "", KORDON_API_ADDR="0.0.0.0:9090")
    assert settings.api.addr == "0.0.0.0:9090"
    assert settings.api.cors_origins == [] and settings.api.tokens == []


def test_token_create_prints_token_once_and_config_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["token", "create", "--role", "operator", "--name", "duty-officer"])
    assert args.handler(args, Settings()) == 0
    out = capsys.readouterr().out
    token = re.search(r"^  (kdn_\S+)$", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert out.count(token) == 1
    line = out[out.index("api:") :]
    settings = _load(tmp_path, line)
    assert settings.api.tokens[0].name == "duty-officer"
    assert TokenBook(settings.api.tokens).authenticate(f"Bearer {token}").role is Role.OPERATOR


def test_token_create_refuses_bad_names(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["token", "create", "--role", "viewer", "--name", "a b"])
    assert args.handler(args, Settings()) == 2
    assert "--name" in capsys.readouterr().err
