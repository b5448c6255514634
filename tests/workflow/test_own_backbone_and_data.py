"""The smoke study from a backbone the user already has (torchvision-layout .pth, timm's
.safetensors, Detectron's .pkl, a timm ViT) and on a COCO-format set with COCO's id habits (docs/real-data.md:
"Does pre-training help on my data?")."""
import json
import pickle
import random
import shutil

import torch
import yaml
from safetensors.torch import save_file

from conftest import SMOKE, copy_workflow, snakemake

MAIN_ONLY = {"study": {"seeds": 1, "norms": [], "regimes": [], "models": [], "tasks": [], "datasets": [], "recipes": []}}


def metrics(results):
    """{checkpoint cell: its 24 AP/AR numbers} of a study's evaluations."""
    out = {}
    for path in sorted(results.glob("eval/*/*/*/*/iter_*/metrics.json")):
        m = json.loads(path.read_text())
        out[str(path.relative_to(results))] = {t: m[t] for t in ("bbox", "segm") if t in m}  # box-only: no segm
    return out


def run_study(work, overrides):
    (work / "mine.yaml").write_text(yaml.safe_dump(overrides))
    snakemake("--cores", "2", "--configfile", str(SMOKE), "mine.yaml", cwd=work)
    return work / "results"


def detectron_blobs(state):
    """Our GN ResNet's weights under Detectron's blob names (its model-zoo layout)."""
    rename = {"conv1.weight": "conv1_w", "bn1.weight": "conv1_gn_s", "bn1.bias": "conv1_gn_b"}
    part = {"conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c", "bn1": "branch2a_gn",
            "bn2": "branch2b_gn", "bn3": "branch2c_gn", "downsample.0": "branch1", "downsample.1": "branch1_gn"}
    blobs = {}
    for key, value in state.items():
        if key in rename:
            name = rename[key]
        else:
            layer, block, rest = key.split(".", 2)
            module, param = rest.rsplit(".", 1)
            suffix = {"weight": "_s", "bias": "_b"}[param] if "gn" in part[module] else "_w"
            name = f"res{int(layer[5:]) + 1}_{block}_{part[module]}{suffix}"
        blobs[name] = value.numpy()
    return {"blobs": blobs}


def coco_habits(src, dst):
    """The set at `src` with COCO's id habits: sparse category ids listed out of order, names
    with spaces, large image and annotation ids listed unordered, no info/licenses in val.
    Every map is increasing, so the images and classes keep their order by id."""
    shutil.copytree(src, dst)
    rng = random.Random(0)
    for split in ("train", "val"):
        path = dst / f"annotations/instances_{split}2017.json"
        doc = json.loads(path.read_text())
        cats = {c["id"]: 7 + 13 * i for i, c in enumerate(sorted(doc["categories"], key=lambda c: c["id"]))}
        imgs = {im["id"]: 397133 + 1009 * i + rng.randrange(1000)
                for i, im in enumerate(sorted(doc["images"], key=lambda im: im["id"]))}
        for c in doc["categories"]:
            c["id"], c["name"] = cats[c["id"]], f"{c['name']} thing"
        doc["categories"].reverse()
        for im in doc["images"]:
            im["id"] = imgs[im["id"]]
        rng.shuffle(doc["images"])
        for a in doc["annotations"]:
            a["id"], a["image_id"], a["category_id"] = 900_000_000 + 37 * a["id"], imgs[a["image_id"]], cats[a["category_id"]]
        if split == "val":
            doc.pop("info", None), doc.pop("licenses", None)
        path.write_text(json.dumps(doc))
    return set(cats.values()), set(imgs.values())


def test_smoke_study_from_torchvision_timm_and_detectron_files_on_a_set_with_cocos_ids(smoke, tmp_path):
    ours = torch.load(smoke / "results/pretrain/GN/backbone.pt", weights_only=True)["model"]
    files = {"pth": tmp_path / "resnet.pth", "safetensors": tmp_path / "resnet.safetensors",
             "pkl": tmp_path / "R-GN.pkl"}
    torch.save(ours, files["pth"])  # torchvision's layout: our ResNet uses its names
    save_file(ours, str(files["safetensors"]))
    files["pkl"].write_bytes(pickle.dumps(detectron_blobs(ours), protocol=2))
    cat_ids, val_ids = coco_habits(smoke / "results/data/coco", tmp_path / "coco")
    work = copy_workflow(tmp_path / "work")
    given = {**MAIN_ONLY, "data": {"coco": str(tmp_path / "coco")}}

    # a backbone that does not fit model.*: one line naming it, before any training starts
    (work / "mine.yaml").write_text(yaml.safe_dump({**given, "model": {"depth": 18},
                                                    "pretrain": {"checkpoint": str(files["pth"])}}))
    proc = snakemake("--cores", "2", "--configfile", str(SMOKE), "mine.yaml", cwd=work, check=False)
    assert proc.returncode != 0
    error = (work / "results/logs/pretrain/import_backbone.log").read_text().strip().splitlines()[-1]
    assert error.startswith(f"error: pretrain.checkpoint {files['pth']}") and "set model.depth: 10" in error, error
    logs = list((work / "results/logs/detection").rglob("iter_*.log"))  # scratch jobs check it too
    assert not list((work / "results/detection").rglob("*.pt")), "training started on a bad backbone"
    assert all("set model.depth: 10" in p.read_text() and "iter " not in p.read_text() for p in logs)

    results = run_study(work, {**given, "pretrain": {"checkpoint": str(files["pth"])}})
    log = (results / "logs/pretrain/import_backbone.log").read_text()
    assert "torchvision- or timm-layout state dict" in log, log
    # the smoke study's own backbone, normalised the same way, on its own images under other
    # ids: the same numbers at every checkpoint of both inits
    first = metrics(results)
    assert len(first) == 8
    assert first == {k: v for k, v in metrics(smoke / "results").items() if k in first}
    for path in results.glob("eval/*/*/*/*/iter_*/bbox_results.json"):  # the dataset's own ids
        dets = json.loads(path.read_text())
        assert dets and {d["category_id"] for d in dets} <= cat_ids and {d["image_id"] for d in dets} <= val_ids
    assert (results / "tables/claims.md").exists()
    scratch = {p: p.stat().st_mtime_ns for p in (results / "detection/main/seed0/scratch").rglob("*.pt")}

    results = run_study(work, {**given, "pretrain": {"checkpoint": str(files["safetensors"])}})
    assert "safetensors state dict (timm)" in (results / "logs/pretrain/import_backbone.log").read_text()
    assert metrics(results) == first  # the same tensors, the same conventions
    assert all(p.stat().st_mtime_ns == t for p, t in scratch.items())  # scratch did not rerun

    results = run_study(work, {**given, "pretrain": {"checkpoint": str(files["pkl"])}})
    assert "Detectron (Caffe2) .pkl" in (results / "logs/pretrain/import_backbone.log").read_text()
    for init in ("scratch", "pretrained"):  # both inits now normalise as Detectron: BGR, 0-255
        ckpt = results / f"detection/main/seed0/{init}/2x/iter_000012.pt"
        assert torch.load(ckpt, weights_only=True)["meta"]["input"]["channels"] == "BGR"
    assert (results / "tables/claims.md").stat().st_mtime_ns > 0 and len(metrics(results)) == 8




def test_a_studys_vit_from_a_timm_vit_file_and_a_vit_file_that_does_not_fit(tmp_path):
    """Issue 35: `model.arch: vit` with `pretrain.checkpoint` a timm VisionTransformer
    (.safetensors, with a class token, as MAE's and supervised ones have): imported, checked
    against model.*, and both inits of the ViT Mask R-CNN trained and scored from it; a file
    of another depth stops the run at the import, naming the file and the key to set."""
    from timm.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    source = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0,
                               num_classes=0)
    file = tmp_path / "vit_mae.safetensors"
    save_file(source.state_dict(), str(file))
    vit = {"arch": "vit", "depth": 2, "width": 32,
           "vit": {"patch_size": 8, "heads": 2, "mlp_ratio": 2.0, "pos_size": 32}}
    work = copy_workflow(tmp_path / "vit")
    (work / "mine.yaml").write_text(yaml.safe_dump({**MAIN_ONLY, "model": vit, "pretrain": {"checkpoint": str(file)},
                                                    "detection": {"schedules": [1]}}))
    targets = [f"results/eval/main/seed0/{init}/1x/iter_000006/metrics.json" for init in ("scratch", "pretrained")]
    snakemake("--cores", "2", *targets, "--configfile", str(SMOKE), "mine.yaml", cwd=work)
    log = (work / "results/logs/pretrain/import_backbone.log").read_text()
    assert "safetensors state dict (timm)" in log and "ViT" in log, log
    imported = torch.load(work / "results/pretrain/given/backbone.pt", weights_only=False)
    assert imported["meta"]["model"]["arch"] == "vit" and "cls_token" not in imported["model"]
    assert torch.equal(imported["model"]["pos_embed"], source.pos_embed[:, 1:])  # the class token's dropped
    for init in ("scratch", "pretrained"):
        m = json.loads((work / targets[init == "pretrained"]).read_text())
        assert m["evaluation"]["model"]["arch"] == "vit"
    # another depth: the import stops the run, naming the file and what to set
    bad = {**vit, "depth": 3}
    (work / "bad.yaml").write_text(yaml.safe_dump({**MAIN_ONLY, "model": bad, "pretrain": {"checkpoint": str(file)},
                                                   "detection": {"schedules": [1]}, "results": "results_bad"}))
    proc = snakemake("--cores", "2", "--configfile", str(SMOKE), "bad.yaml", cwd=work, check=False)
    out = proc.stdout + proc.stderr + "".join(p.read_text() for p in (work / "results_bad/logs").rglob("*.log"))
    assert proc.returncode != 0 and str(file) in out and "set model.depth: 2" in out
    assert not list((work / "results_bad").rglob("iter_*.pt"))
