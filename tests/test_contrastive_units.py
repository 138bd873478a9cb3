"""Contrastive losses, queue and momentum checked against direct, loop-based computations."""

import math

import pytest
import torch
import torch.nn.functional as F

from algorithms.contrastive.evaluation import knn_accuracy, linear_probe_accuracy
from algorithms.contrastive.losses import (byol_loss, contrastive_pair_loss, info_nce, n_pair_loss,
                                           negative_cosine, nt_xent, triplet_loss)
from algorithms.contrastive.methods import BYOL, MoCo, SimSiam, grouped_forward
from algorithms.contrastive.momentum import KeyQueue, cosine_momentum, momentum_update
from algorithms.contrastive.networks import SmallCNN


def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def nt_xent_loop(z1, z2, tau):
    """SimCLR's l(i, j) = -log exp(s_ij / tau) / sum_{k != i} exp(s_ik / tau), averaged over all 2N anchors."""
    z = [list(map(float, v)) for v in torch.cat([z1, z2])]
    n, total = len(z1), 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(cos(z[i], z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(cos(z[i], z[j]) / tau) / denominator)
    return total / (2 * n)


def info_nce_loop(q, k, queue, tau):
    total = 0.0
    for qi, ki in zip(q.tolist(), k.tolist()):
        positive = math.exp(cos(qi, ki) / tau)
        negatives = sum(math.exp(cos(qi, key) / tau) for key in queue.tolist())
        total += -math.log(positive / (positive + negatives))
    return total / len(q)


@pytest.mark.parametrize("tau", [0.05, 0.2, 1.0])
def test_nt_xent_equals_loop(tau):
    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(nt_xent_loop(z1, z2, tau), rel=1e-9)


@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_info_nce_equals_loop(tau):
    torch.manual_seed(1)
    q, k = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    queue = F.normalize(torch.randn(9, 6, dtype=torch.float64), dim=1)
    assert info_nce(q, k, queue, tau).item() == pytest.approx(info_nce_loop(q, k, queue, tau), rel=1e-9)


def test_info_nce_is_low_when_the_key_matches_and_negatives_differ():
    q = torch.tensor([[1.0, 0.0]])
    easy = info_nce(q, q.clone(), torch.tensor([[-1.0, 0.0]]), 0.1).item()
    hard = info_nce(q, torch.tensor([[-1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), 0.1).item()
    assert easy < 1e-6 and hard > 10


def test_pair_triplet_and_n_pair_losses_equal_loops():
    torch.manual_seed(2)
    z1, z2 = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    a, b = z1.tolist(), z2.tolist()
    d = [[1 - cos(a[i], b[j]) for j in range(4)] for i in range(4)]
    margin = 0.5
    positive = sum(d[i][i] ** 2 for i in range(4)) / 4
    negative = sum(max(0.0, margin - d[i][j]) ** 2 for i in range(4) for j in range(4) if i != j) / 12
    assert contrastive_pair_loss(z1, z2, margin).item() == pytest.approx(positive + negative, rel=1e-9)
    triplet = sum(max(0.0, d[i][i] - min(d[i][j] for j in range(4) if j != i) + margin) for i in range(4)) / 4
    assert triplet_loss(z1, z2, margin).item() == pytest.approx(triplet, rel=1e-9)
    dots = [[sum(x * y for x, y in zip(a[i], b[j])) for j in range(4)] for i in range(4)]
    ce = sum(-dots[i][i] + math.log(sum(math.exp(v) for v in dots[i])) for i in range(4)) / 4
    l2 = 0.002 * (sum(sum(x * x for x in v) for v in a) / 4 + sum(sum(x * x for x in v) for v in b) / 4)
    assert n_pair_loss(z1, z2).item() == pytest.approx(ce + l2, rel=1e-9)


def test_byol_and_simsiam_losses():
    p, z = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[1.0, 0.0], [0.0, -1.0]])
    assert byol_loss(p, z).item() == pytest.approx((0 + 4) / 2)  # 2 - 2cos: 0 and 4
    assert negative_cosine(p, z).item() == pytest.approx((-1 + 1) / 2)


def test_queue_is_fifo_and_keeps_size_k():
    queue = KeyQueue(size=5, dim=2)
    batches = [torch.tensor([[float(i), 1.0], [float(i), 2.0]]) for i in range(1, 5)]
    for batch in batches:
        queue.enqueue(batch)
        assert queue.keys.shape == (5, 2)
    written = F.normalize(torch.cat(batches), dim=1)
    assert torch.allclose(queue.ordered(), written[-5:]), "the five newest keys, oldest first"
    assert int(queue.pointer) == 8 % 5
    with pytest.raises(ValueError, match="does not fit"):
        queue.enqueue(torch.randn(6, 2))


def test_momentum_update_extremes():
    online, target = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    before = [p.clone() for p in target.parameters()]
    momentum_update(target, online, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, target.parameters())), "m=1 freezes"
    momentum_update(target, online, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters())), "m=0 copies"
    target.weight.data.fill_(1.0)
    online.weight.data.fill_(3.0)
    momentum_update(target, online, 0.9)
    assert torch.allclose(target.weight, torch.full((3, 3), 0.9 * 1 + 0.1 * 3))


def test_cosine_momentum_schedule():
    assert cosine_momentum(0.99, 0, 100) == pytest.approx(0.99)
    assert cosine_momentum(0.99, 50, 100) == pytest.approx(0.995)
    assert cosine_momentum(0.99, 100, 100) == pytest.approx(1.0)


def test_stop_gradient_blocks_the_target_branch():
    p = torch.randn(4, 3, requires_grad=True)
    z = torch.randn(4, 3, requires_grad=True)
    (negative_cosine(p, z) + byol_loss(p, z)).backward()
    assert z.grad is None and p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("method", ["moco", "byol", "simsiam"])
def test_targets_get_no_gradient_from_the_loss(method):
    torch.manual_seed(3)
    encoder = SmallCNN(1, width=4, out_dim=8)
    model = {"moco": lambda: MoCo(encoder, 4, 8, temperature=0.2, momentum=0.9, queue_size=8, bn_groups=2),
             "byol": lambda: BYOL(encoder, 4, 8, tau=0.9),
             "simsiam": lambda: SimSiam(encoder, 4, 8)}[method]()
    x1, x2 = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    model.loss(x1, x2).backward()
    assert all(p.grad is not None for p in encoder.parameters())
    if method != "simsiam":
        target = model.key if method == "moco" else model.target
        assert all(p.grad is None and not p.requires_grad for p in target.parameters())
        snapshot = [p.clone() for p in target.parameters()]
        model.after_step(1, 10)
        moved = any(not torch.equal(a, b) for a, b in zip(snapshot, target.parameters()))
        assert moved, "the momentum update moves the target towards the online network"
    if method == "moco":
        assert torch.allclose(model.queue.ordered()[-4:], model.pending_keys), "this batch's keys are newest"


def test_a_key_depends_only_on_its_shuffled_bn_group():
    """MoCo's shuffling BN: each key is computed with the BatchNorm statistics of its own randomly drawn
    sub-batch, so it does not depend on the rest of the batch (its query's sub-batch included)."""
    torch.manual_seed(0)
    model = MoCo(SmallCNN(1, width=4, out_dim=8), 4, 8, temperature=0.2, momentum=0.9, queue_size=64, bn_groups=4)
    key = model.key.train()
    x = torch.randn(32, 1, 8, 8)
    torch.manual_seed(1)
    keys = grouped_forward(key, x, 4, shuffle=True)
    torch.manual_seed(1)
    order = torch.randperm(32)
    groups = order.chunk(4)
    for members in groups:
        assert torch.allclose(keys[members], key(x[members]), atol=1e-5), "statistics of its own group only"
    assert keys.shape == (32, 4)
    mine = groups[0]
    others = torch.tensor([i for i in range(32) if i not in set(mine.tolist())])
    changed = x.clone()
    changed[others] = torch.randn(len(others), 1, 8, 8) * 3
    torch.manual_seed(1)
    assert torch.allclose(grouped_forward(key, changed, 4, shuffle=True)[mine], keys[mine], atol=1e-5)
    query_groups = torch.arange(32).chunk(4)
    same = sum(len(set(q.tolist()) & set(k.tolist())) ** 2 for q in query_groups for k in groups)
    assert same < 32 * 8 / 2, "key sub-batches are not the query sub-batches"
    unshuffled = grouped_forward(key, x, 4)
    assert torch.allclose(unshuffled[:8], key(x[:8]), atol=1e-5) and not torch.allclose(unshuffled, key(x), atol=1e-3)


def test_moco_loss_computes_its_keys_with_shuffled_bn():
    """`MoCo.loss` itself shuffles: its keys are the shuffled grouped forward pass, not the contiguous one
    (which would let a key share BatchNorm statistics with its query's sub-batch)."""
    torch.manual_seed(0)
    model = MoCo(SmallCNN(1, width=4, out_dim=8), 4, 8, temperature=0.2, momentum=0.9, queue_size=64, bn_groups=4)
    x1, x2 = torch.randn(32, 1, 8, 8), torch.randn(32, 1, 8, 8)
    torch.manual_seed(1)
    model.loss(x1, x2)
    torch.manual_seed(1)
    shuffled = F.normalize(grouped_forward(model.key, x2, 4, shuffle=True), dim=1)
    contiguous = F.normalize(grouped_forward(model.key, x2, 4), dim=1)
    assert torch.allclose(model.pending_keys, shuffled, atol=1e-5)
    assert not torch.allclose(model.pending_keys, contiguous, atol=1e-2)


@pytest.mark.parametrize("batch,groups", [(13, 4), (6, 4), (8, 1)])
def test_grouped_forward_refuses_unequal_groups_and_a_shuffle_of_one_group(batch, groups):
    """torch.chunk would split 13 into 4, 4, 4 and 1 (a one-sample BatchNorm1d group raises deep inside
    MoCo v2's head); the sweep refuses such a config before it starts, and this is the last guard."""
    with pytest.raises(ValueError, match="groups"):
        grouped_forward(torch.nn.Identity(), torch.randn(batch, 3), groups, shuffle=True)


def test_knn_and_linear_probe_on_separable_data():
    torch.manual_seed(4)
    centers = torch.eye(3) * 5
    train_y, test_y = torch.arange(30) % 3, torch.arange(12) % 3
    train_x, test_x = centers[train_y] + torch.randn(30, 3) * 0.3, centers[test_y] + torch.randn(12, 3) * 0.3
    assert knn_accuracy(train_x, train_y, test_x, test_y, 3, k=5) == 1.0
    assert linear_probe_accuracy(train_x, train_y, test_x, test_y) == 1.0
    shuffled = train_y[torch.randperm(30)]
    assert knn_accuracy(train_x, shuffled, test_x, test_y, 3, k=5) < 0.9


def test_linear_probe_is_converged_logistic_regression():
    """On the digits pixels the probe scores what a much longer, tighter fit scores, far above chance,
    and near chance on shuffled labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from algorithms.data import load_dataset

    train, test = load_dataset("digits").split(0.2, seed=0)
    train_x, test_x = train.images.flatten(1), test.images.flatten(1)
    accuracy = linear_probe_accuracy(train_x, train.labels, test_x, test.labels)
    scaler = StandardScaler().fit(train_x.numpy())
    reference = LogisticRegression(max_iter=20_000, tol=1e-8).fit(scaler.transform(train_x.numpy()), train.labels)
    assert accuracy == pytest.approx(reference.score(scaler.transform(test_x.numpy()), test.labels), abs=1 / 359)
    assert accuracy > 0.9
    shuffled = train.labels[torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(0))]
    assert linear_probe_accuracy(train_x, shuffled, test_x, test.labels) < 0.25


def test_resnet18_encoder_for_cifar():
    from algorithms.contrastive.networks import build_encoder

    encoder = build_encoder("resnet18", 3, width=32, out_dim=128)
    assert encoder(torch.randn(2, 3, 32, 32)).shape == (2, 512) and encoder.out_dim == 512


def test_augmentations_suit_each_data_set():
    from algorithms.contrastive.augment import ViewMaker, build_recipe

    digits, cifar = build_recipe((1, 8, 8), "weak"), build_recipe((3, 32, 32), "strong")
    assert not digits.flip and not digits.jitter and digits.degrees == 10  # a flipped 2 is no 2
    assert cifar.flip and cifar.jitter == 0.8 and cifar.grey_p == 0.2 and cifar.blur_p == 0.5
    assert cifar.crop_scale == (0.2, 1.0) and digits.crop_scale == (0.5, 1.0)
    assert build_recipe((3, 32, 32), "weak").blur_p == 0, "blur is MoCo v2's stronger recipe"
    assert build_recipe((1, 28, 28), "strong").erase_p == 0.25
    for shape, strength in [((1, 8, 8), "weak"), ((1, 28, 28), "strong"), ((3, 32, 32), "strong")]:
        batch = torch.rand(16, *shape) * 2 - 1
        torch.manual_seed(0)
        a, b = ViewMaker(shape, strength)(batch)
        assert a.shape == batch.shape and not torch.allclose(a, b)
        assert a.min() >= -1 and a.max() <= 1
        torch.manual_seed(0)
        assert torch.equal(ViewMaker(shape, strength)(batch)[0], a), "the trial's seed fixes its views"


def _geometry(n=2, width=1.0, height=1.0, centre=(0.0, 0.0), angle=0.0, shift=(0.0, 0.0), flip=False):
    from algorithms.contrastive.augment import geometry

    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    return geometry(full(width), full(height), torch.tensor([centre] * n), full(angle), torch.tensor([shift] * n),
                    torch.tensor([flip] * n))


def test_batched_geometry_matches_torchvision():
    """One affine grid per image does torchvision's crop, rotation, translation and flip."""
    from torchvision.transforms.v2 import functional as TF

    from algorithms.contrastive.augment import warp

    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(warp(x, _geometry()), x)
    assert torch.allclose(warp(x, _geometry(angle=90)), TF.rotate(x, 90), atol=1e-6)  # counter-clockwise
    assert torch.equal(warp(x, _geometry(flip=True)), x.flip(-1))
    one_pixel_right_and_down = TF.affine(x, angle=0, translate=[1, 1], scale=1, shear=[0, 0])
    assert torch.allclose(warp(x, _geometry(shift=(1 / 8, 1 / 8))), one_pixel_right_and_down, atol=1e-6)
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16) * 0.7 + torch.linspace(0, 1, 16).view(1, 1, 16, 1) * 0.3
    turned = TF.affine(ramp, angle=-30, translate=[0, 0], scale=1, shear=[0, 0],  # affine's angle is clockwise
                       interpolation=TF.InterpolationMode.BILINEAR)
    assert torch.allclose(warp(ramp, _geometry(n=1, angle=30))[..., 4:12, 4:12], turned[..., 4:12, 4:12], atol=1e-5)
    # the top-left quadrant resized to the whole image (inside the crop; at its inner edge the grid keeps
    # sampling the image beyond the crop where interpolate clamps)
    quadrant = F.interpolate(x[..., :4, :4], size=8, mode="bilinear", align_corners=False)
    cropped = warp(x, _geometry(width=0.5, height=0.5, centre=(-0.5, -0.5)), "border")
    assert torch.allclose(cropped[..., :7, :7], quadrant[..., :7, :7], atol=1e-6)


def test_sampled_crops_keep_torchvisions_ranges():
    from algorithms.contrastive.augment import build_recipe, sample_geometry

    torch.manual_seed(0)
    recipe = build_recipe((3, 32, 32), "strong")
    theta = sample_geometry(20_000, recipe)
    width, height = theta[:, 0, :2].norm(dim=1), theta[:, 1, :2].norm(dim=1)
    area, ratio = width * height, width / height
    assert area.min() >= 0.2 - 1e-6 and area.max() <= 1 + 1e-6
    assert ratio.min() >= 0.8 - 1e-6 and ratio.max() <= 1.25 + 1e-6
    assert (theta[:, :, 2].abs() <= 1 - torch.stack([width, height], 1) + 1e-6).all(), "crops stay inside"
    assert abs((theta[:, 0, 0] < 0).float().mean().item() - 0.5) < 0.02, "half are mirrored"


def test_colour_jitter_blur_and_erasing_are_the_torchvision_operations():
    from torchvision.transforms.v2 import functional as TF

    from algorithms.contrastive import augment

    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(augment._hsv_to_rgb(augment._rgb_to_hsv(x)), x, atol=1e-5)
    hsv = augment._rgb_to_hsv(x)
    shifted = augment._hsv_to_rgb(torch.stack([(hsv[:, 0] + 0.1) % 1.0, hsv[:, 1], hsv[:, 2]], 1))
    assert torch.allclose(shifted, TF.adjust_hue(x, 0.1), atol=1e-4)
    assert torch.allclose(augment._grey(x), TF.rgb_to_grayscale(x), atol=1e-6)
    assert torch.equal(augment.colour_jitter(x, 0.8, torch.zeros(4, dtype=torch.bool)), x)
    flat = torch.full((2, 3, 8, 8), 0.3)
    assert torch.allclose(augment.gaussian_blur(flat, 3, torch.ones(2, dtype=torch.bool)), flat, atol=1e-6)
    torch.manual_seed(0)
    erased = augment.random_erasing(torch.ones(500, 1, 28, 28), torch.ones(500, dtype=torch.bool))
    share = 1 - erased.mean((1, 2, 3))
    assert 0.01 < share.min() and share.max() < 0.2 and 0.05 < share.mean() < 0.1  # area in [0.02, 0.15]


def test_only_held_out_images_are_scored_with_a_wilson_interval_of_one_classifier():
    """The encoder pretrains on the other 80%; kNN and the probe fit on those images' features and score
    only the 359 it never saw, once each, so the count of correct answers is binomial."""
    from algorithms.contrastive import FAMILY
    from algorithms.contrastive.evaluation import evaluate_features, held_out_split
    from algorithms.contrastive.experiment import ContrastiveExperiment
    from algorithms.data import load_dataset
    from orchestration.aggregate import wilson_interval

    data = load_dataset("digits")
    train, test = held_out_split(data, seed=3)
    scores = evaluate_features(train.images.flatten(1), train.labels, test.images.flatten(1), test.labels, 10, k=20)
    assert scores["eval_items"] == 359 and 0.9 < scores["knn_acc"] <= 1.0
    ci = wilson_interval(round(scores["linear_acc"] * 359), 359)
    assert (scores["linear_acc_ci_low"], scores["linear_acc_ci_high"]) == pytest.approx((ci.low, ci.high))

    def seen_and_scored(seed):
        experiment = ContrastiveExperiment(FAMILY.resolve({"seed": seed}))
        as_rows = lambda images: {tuple(x.flatten().tolist()) for x in images}  # noqa: E731
        pretraining = experiment.images.batch(torch.arange(len(experiment.images)))
        return as_rows(pretraining), as_rows(experiment.test_data.images), experiment.evaluate()["eval/eval_items"]

    seen, scored, items = seen_and_scored(0)
    assert items == 359 and len(scored) > 300 and not seen & scored, "no scored image is a pretraining image"
    assert seen_and_scored(1)[1] != scored, "each seed holds out other images (the same for every configuration)"
