"""SimSiam pre-training of a conv backbone (rethink.models.simsiam, issue 35): its loss falls
on the synthetic world's ImageNet images from two augmented views, without labels, and
trains the encoder the detector loads; the stop-gradient holds the target branch fixed."""
import numpy as np
import torch

from rethink.engine.methods import feature_dim, train_transform
from rethink.models.detector import ResNet
from rethink.models.simsiam import SimSiam
from test_mae import smoke_images


def test_the_negative_cosine_loss_falls_on_two_views_of_the_synthetic_world(tmp_path):
    images = smoke_images(tmp_path / "imagenet")  # (32, 3, 32, 32) in [0, 1]
    views = train_transform("simsiam", 32, (0.2, 1.0), 0.5)
    torch.manual_seed(0)
    encoder = ResNet(depth=10, width=8, norm="GN", gn_groups=4)
    model = SimSiam(encoder, feature_dim(encoder))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(60):
        pairs = [views((255 * images[i]).to(torch.uint8)) for i in torch.randperm(len(images), generator=gen)[:16]]
        v1, v2 = torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])
        loss = model(v1, v2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    print(f"SimSiam loss {first:.3f} -> {last:.3f}")
    assert -1.0 <= last < first - 0.15  # the two views' predictions come to agree
    changed = [k for k, v in encoder.state_dict().items() if not torch.equal(v, before[k])]
    assert {"conv1.weight", "layer4.0.conv2.weight"} <= set(changed)


def test_the_target_branch_gets_no_gradient():
    """With the predictor's output detached, nothing upstream of the loss would learn; with the
    stop-gradient only on the targets, the gradient reaches the encoder through the predictions
    alone: the loss of a pair with itself still trains (identical views are not a fixed point)."""
    torch.manual_seed(0)
    encoder = ResNet(depth=10, width=8, norm="GN", gn_groups=4)
    model = SimSiam(encoder, feature_dim(encoder))
    x = torch.randn(4, 3, 32, 32)
    z = model.projector(model.embed(x))
    p = model.predictor(z)
    target = z.detach().requires_grad_(True)
    loss = -torch.nn.functional.cosine_similarity(p, target, dim=-1).mean()
    loss.backward()
    assert target.grad is not None  # a leaf we made: gradient stops there, not in the encoder's graph
    model.zero_grad()
    model(x, x.clone()).backward()
    assert encoder.conv1.weight.grad.abs().sum() > 0
