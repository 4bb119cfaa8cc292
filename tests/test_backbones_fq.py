"""The Flamingo (Idefics) and Qwen2-VL backbone adapters at their tiny presets, built offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.models.backbones import BackboneSpec, build_backbone
from trainer.tokenizer import train_tokenizer

NAMES = ["flamingo", "qwen-vl"]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer()


@pytest.fixture(scope="module")
def backbones(tok):
    torch.manual_seed(0)
    out = {name: build_backbone(BackboneSpec(name), tok).eval() for name in NAMES}
    return out


def vision_tower(bb):
    return bb.model.model.vision_model if bb.name == "flamingo" else bb.model.model.visual


def batch(tok, seed: int = 0):
    """Two rows, two images each, different lengths (right padding); placeholders interleaved with text."""
    img, act, pad, bos = (tok.convert_tokens_to_ids(t) for t in ("<image>", "<act>", "<pad>", "<bos>"))
    w = tok.convert_tokens_to_ids(tok.tokenize("pick up the red block on the table"))
    rows = [
        [bos, img, img, w[0], w[1], w[2], w[3], act],  # two cameras, then text: length 8
        [bos, w[4], img, w[5], img, w[6]],  # history: image, text, image, text: length 6
    ]
    length = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (length - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows])
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, 2, 3, 64, 64, generator=g)
    return images, ids, mask, [len(r) for r in rows]


@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes_and_finite(name, tok, backbones):
    bb = backbones[name]
    images, ids, mask, _ = batch(tok)
    with torch.no_grad():
        out = bb(images, ids, mask, return_logits=True)
    assert out.hidden.shape == (2, ids.shape[1], bb.hidden_size)
    assert out.logits.shape == (2, ids.shape[1], len(tok))
    assert torch.isfinite(out.hidden).all() and torch.isfinite(out.logits).all()
    with torch.no_grad():
        assert bb(images, ids, mask).logits is None


@pytest.mark.parametrize("name", NAMES)
def test_images_are_used_causally(name, tok, backbones):
    bb = backbones[name]
    images, ids, mask, _ = batch(tok)
    changed = images.clone()
    changed[0, 0] = 1.0 - changed[0, 0]  # the first image of row 0
    with torch.no_grad():
        a = bb(images, ids, mask).hidden
        b = bb(changed, ids, mask).hidden
    assert (a[0, 7] - b[0, 7]).abs().max() > 1e-4  # text after the images sees the change
    assert (a[0, 1] - b[0, 1]).abs().max() > 1e-4  # the image's placeholder carries the image
    torch.testing.assert_close(a[0, 0], b[0, 0])  # <bos> comes before any image
    torch.testing.assert_close(a[1], b[1])  # the other row is untouched


@pytest.mark.parametrize("name", NAMES)
def test_rows_do_not_depend_on_padding(name, tok, backbones):
    bb = backbones[name]
    images, ids, mask, lengths = batch(tok)
    with torch.no_grad():
        full = bb(images, ids, mask, return_logits=True)
        for i, n in enumerate(lengths):
            alone = bb(images[i : i + 1], ids[i : i + 1, :n], mask[i : i + 1, :n], return_logits=True)
            torch.testing.assert_close(full.hidden[i, :n], alone.hidden[0], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(full.logits[i, :n], alone.logits[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_vision_tower(name, tok, backbones):
    bb = backbones[name]
    bb.zero_grad(set_to_none=True)
    images, ids, mask, _ = batch(tok)
    out = bb(images, ids, mask, return_logits=True)
    m = mask.unsqueeze(-1).float()
    loss = (out.hidden * m).pow(2).mean() + (out.logits * m).logsumexp(-1).mean()
    loss.backward()
    grads = [p.grad for p in vision_tower(bb).parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    embed = next(vision_tower(bb).parameters())  # the patch embedding comes first in both towers
    assert embed.grad is not None and embed.grad.abs().sum() > 0
    bb.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", NAMES)
def test_placeholder_image_mismatch_raises(name, tok, backbones):
    bb = backbones[name]
    images, ids, mask, _ = batch(tok)
    with pytest.raises(ValueError, match="one <image> token per image"):
        bb(images[:, :1], ids, mask)
    with pytest.raises(ValueError, match="one <image> token per image"):
        bb(torch.cat([images, images[:, :1]], dim=1), ids, mask)


@pytest.mark.parametrize("name", NAMES)
def test_text_only(name, tok, backbones):
    bb = backbones[name]
    ids = torch.tensor([tok.convert_tokens_to_ids(tok.tokenize("push the handle"))])
    with torch.no_grad():
        out = bb(torch.zeros(1, 0, 3, 64, 64), ids, torch.ones_like(ids), return_logits=True)
    assert out.hidden.shape == (1, ids.shape[1], bb.hidden_size) and torch.isfinite(out.logits).all()


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_roundtrip(name, tok, backbones, tmp_path):
    bb = backbones[name]
    bb.model.save_pretrained(tmp_path)
    again = build_backbone(BackboneSpec(name, pretrained=str(tmp_path)), tok).eval()
    assert again.image_size == bb.image_size and again.hidden_size == bb.hidden_size
    images, ids, mask, _ = batch(tok, seed=3)
    with torch.no_grad():
        a = bb(images, ids, mask, return_logits=True)
        b = again(images, ids, mask, return_logits=True)
    torch.testing.assert_close(a.hidden, b.hidden, atol=0, rtol=0)
    torch.testing.assert_close(a.logits, b.logits, atol=0, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_checkpointing_trains(name, tok):
    bb = build_backbone(BackboneSpec(name, gradient_checkpointing=True), tok).train()
    images, ids, mask, _ = batch(tok)
    bb(images, ids, mask).hidden.pow(2).mean().backward()
    assert next(vision_tower(bb).parameters()).grad is not None


def test_tiny_presets_are_tiny(backbones):
    for bb in backbones.values():
        assert 1e5 < sum(p.numel() for p in bb.parameters()) < 6e5
        assert all(p.requires_grad for p in bb.parameters())


def test_flamingo_image_attention_rules(tok, backbones):
    images, ids, mask, _ = batch(tok)
    allm = backbones["flamingo"].image_attention_mask(ids, mask, 2)
    # row 1: bos, w, <image>, w, <image>, w, pad, pad
    assert allm[1].tolist() == [[0, 0], [0, 0], [1, 0], [1, 0], [1, 1], [1, 1], [0, 0], [0, 0]]
    last = build_backbone(BackboneSpec("flamingo", overrides={"image_attention": "last"}), tok)
    lastm = last.image_attention_mask(ids, mask, 2)
    assert lastm[1].tolist() == [[0, 0], [0, 0], [1, 0], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0]]
    with pytest.raises(ValueError, match="image_attention"):
        build_backbone(BackboneSpec("flamingo", overrides={"image_attention": "first"}), tok)


def test_qwen_patchify_matches_image_processor():
    proc_mod = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
    from trainer.models.backbones.qwen_vl import mrope_section, patchify

    imgs = torch.rand(3, 3, 64, 48)
    proc = proc_mod.Qwen2VLImageProcessorPil()
    ref = np.concatenate([proc.patchify(im.numpy(), 8, 2, 2)[0] for im in imgs])
    flat, grid = patchify(imgs, patch=8, merge=2, temporal_patch=2)
    np.testing.assert_allclose(flat.numpy(), ref)
    assert grid.tolist() == [[1, 8, 6]] * 3
    assert mrope_section(128) == [16, 24, 24] and sum(mrope_section(16)) == 8


def test_qwen_expansion_layout(tok, backbones):
    bb = backbones["qwen-vl"]
    assert bb.tokens_per_image == (64 // 8) ** 2 // 4
    cfg = bb.model.config
    assert (cfg.image_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id) == tuple(
        tok.convert_tokens_to_ids(["<image>", "<vision_start>", "<vision_end>"])
    )
    rope = cfg.text_config.rope_parameters["mrope_section"]
    assert sum(rope) == cfg.text_config.hidden_size // cfg.text_config.num_attention_heads // 2
