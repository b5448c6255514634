"""The conda environments pin the same versions as the pip install (requirements.txt)."""
import re

import yaml

from conftest import ROOT


def pins(lines):
    out = {}
    for line in lines:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            out[m[1].lower()] = m[2]
    return out


def test_every_env_pin_matches_requirements():
    required = pins((ROOT / "requirements.txt").read_text().splitlines())
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    for env in envs:
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
        env_pins = pins(pip)
        assert env_pins, env
        for name, version in env_pins.items():
            assert required.get(name) == version, f"{env.name}: {name}=={version} vs requirements.txt"
        assert "python=3.11" in spec["dependencies"], env


def test_every_rule_env_exists():
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        for rel in re.findall(r'"\.\./\.\./(envs/[\w.]+)"', smk.read_text()):
            assert (ROOT / rel).is_file(), f"{smk.name} uses missing {rel}"
