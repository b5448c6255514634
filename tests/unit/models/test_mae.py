"""MAE pre-training of the ViT (rethink.models.mae, issue 35): the loss falls on the synthetic
world's ImageNet images, reads no label, and trains the encoder the detector loads."""
import numpy as np
import torch
from PIL import Image

from rethink.data import writers
from rethink.models.mae import MAE
from rethink.models.vit import ViT
from tiny import tiny


def smoke_images(root) -> torch.Tensor:
    synth = tiny()[0]
    writers.generate_imagenet(root, synth, seed=0)
    files = sorted((root / "train").rglob("*.JPEG"))
    return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255)
                        .permute(2, 0, 1) for f in files])


def test_the_masked_reconstruction_loss_falls_on_the_synthetic_world(tmp_path):
    images = smoke_images(tmp_path / "imagenet")
    assert images.shape[1:] == (3, 32, 32) and len(images) == 32
    torch.manual_seed(0)
    encoder = ViT(depth=2, width=32, patch_size=8, heads=2, pos_size=32)
    mae = MAE(encoder, decoder_width=32, decoder_depth=1, decoder_heads=2, mask_ratio=0.75)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    opt = torch.optim.AdamW(mae.parameters(), lr=2e-3, weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(60):
        batch = images[torch.randperm(len(images), generator=gen)[:16]]
        loss = mae(batch, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    print(f"MAE loss {first:.3f} -> {last:.3f}")
    assert last < 0.8 * first
    changed = [k for k, v in encoder.state_dict().items() if not torch.equal(v, before[k])]
    assert {"patch_embed.weight", "pos_embed", "blocks.1.fc2.weight", "norm.weight"} <= set(changed)


def test_the_loss_counts_only_masked_patches():
    """With the pixel predictor zeroed, a patch's loss is its normalised target's mean square:
    0 for a flat patch, about 1 for a noisy one. Noise exactly where the mask falls gives about
    1; noise exactly where the encoder looks gives 0."""
    torch.manual_seed(0)
    mae = MAE(ViT(depth=1, width=16, patch_size=8, heads=2, pos_size=32), decoder_width=16, mask_ratio=0.5)
    torch.nn.init.zeros_(mae.predict.weight)
    torch.nn.init.zeros_(mae.predict.bias)
    visible = torch.rand(2, 16, generator=torch.Generator().manual_seed(3)).argsort(1)[:, :8]
    seen = torch.zeros(2, 16, dtype=torch.bool)
    seen[torch.arange(2)[:, None], visible] = True

    def images(noisy):  # (2, 16) patches -> images: noise in the noisy patches, flat grey elsewhere
        cells = torch.where(noisy[:, :, None], torch.rand(2, 16, 192), torch.full((2, 16, 192), 0.5))
        return cells.reshape(2, 4, 4, 8, 8, 3).permute(0, 5, 1, 3, 2, 4).reshape(2, 3, 32, 32)

    assert torch.equal(mae.patches(images(seen)) != 0.5, seen[:, :, None].expand(-1, -1, 192))
    masked_noise = mae(images(~seen), torch.Generator().manual_seed(3))
    seen_noise = mae(images(seen), torch.Generator().manual_seed(3))
    assert abs(masked_noise.item() - 191 / 192) < 1e-4 and seen_noise.item() == 0.0
