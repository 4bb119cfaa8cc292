"""LLaVA and PaliGemma backbones: tiny presets built from configs with our offline tokenizer."""

from __future__ import annotations

import pytest
import torch

from trainer.models.backbones import BackboneSpec, build_backbone
from trainer.tokenizer import train_tokenizer

NAMES = ["llava", "paligemma"]
# two rows, two images each, different text lengths (right padding); row 1 has text between its images
TEXTS = ["<image> <image> pick up the red block", "<image> open <image> the drawer and push the blue block"]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def build(name, tokenizer, **kwargs):
    torch.manual_seed(0)
    return build_backbone(BackboneSpec(name, **kwargs), tokenizer)


def encode(tokenizer, texts):
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    assert tokenizer.padding_side == "right"
    return enc.input_ids, enc.attention_mask


def images(b, n, seed=1, size=64):
    return torch.rand(b, n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes_and_image_use(name, tokenizer):
    bb = build(name, tokenizer).eval()
    assert 100_000 < sum(p.numel() for p in bb.parameters()) < 600_000
    ids, mask = encode(tokenizer, TEXTS)
    assert mask[0].sum() < mask[1].sum()  # row 0 is padded
    imgs = images(2, 2)
    with torch.no_grad():
        out = bb(imgs, ids, mask, return_logits=True)
        assert out.hidden.shape == (2, ids.shape[1], bb.hidden_size)
        assert out.logits.shape == (2, ids.shape[1], len(tokenizer))
        assert torch.isfinite(out.hidden).all() and torch.isfinite(out.logits).all()
        assert bb(imgs, ids, mask).logits is None

        # the second image of row 1 sits at position 2: it changes the text after it, not "open" before it
        changed = imgs.clone()
        changed[1, 1] = 1.0 - changed[1, 1]
        other = bb(changed, ids, mask).hidden
    assert not torch.allclose(other[1, 3], out.hidden[1, 3], atol=1e-4)
    torch.testing.assert_close(other[1, :2], out.hidden[1, :2])
    torch.testing.assert_close(other[0], out.hidden[0])  # row 0 does not see row 1's images

    # the number of image tokens is what the vision tower yields per image
    with torch.no_grad():
        feats = bb.model.get_image_features(pixel_values=bb.normalize_images(imgs[0])).pooler_output
    assert len(feats) == 2 and feats[0].shape == (bb.tokens_per_image, bb.hidden_size)
    assert bb.tokens_per_image == (64 // 16) ** 2


@pytest.mark.parametrize("name", NAMES)
def test_padding_of_other_row_does_not_matter(name, tokenizer):
    bb = build(name, tokenizer).eval()
    imgs = images(2, 2)
    ids, mask = encode(tokenizer, TEXTS)
    alone_ids, alone_mask = encode(tokenizer, TEXTS[:1])
    length = int(alone_mask.sum())
    with torch.no_grad():
        batched = bb(imgs, ids, mask, return_logits=True)
        alone = bb(imgs[:1], alone_ids, alone_mask, return_logits=True)
    torch.testing.assert_close(batched.hidden[0, :length], alone.hidden[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batched.logits[0, :length], alone.logits[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_vision_tower_and_checkpointing(name, tokenizer):
    ids, mask = encode(tokenizer, TEXTS)
    imgs = images(2, 2)
    grads = []
    for checkpointing in (False, True):
        bb = build(name, tokenizer, gradient_checkpointing=checkpointing).train()
        assert bb.model.is_gradient_checkpointing == checkpointing
        out = bb(imgs, ids, mask, return_logits=True)
        (out.hidden[mask.bool()].pow(2).mean() + out.logits[mask.bool()].logsumexp(-1).mean()).backward()
        vision = [p.grad for p in bb.model.model.vision_tower.parameters() if p.grad is not None]
        assert vision and any(float(g.abs().sum()) > 0 for g in vision)
        proj = bb.model.model.multi_modal_projector
        assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in proj.parameters())
        grads.append({n: p.grad.clone() for n, p in bb.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for key, g in grads[0].items():
        torch.testing.assert_close(grads[1][key], g, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_placeholder_image_mismatch_raises(name, tokenizer):
    bb = build(name, tokenizer)
    ids, mask = encode(tokenizer, TEXTS)
    with pytest.raises(ValueError, match="one <image> token per image"):
        bb(images(2, 1), ids, mask)
    with pytest.raises(ValueError):
        bb(images(2, 3), ids, mask)
    uneven_ids, uneven_mask = encode(tokenizer, ["<image> <image> pick up", "<image> open the drawer"])
    with pytest.raises(ValueError):
        bb(images(2, 2), uneven_ids, uneven_mask)
    # no images and no placeholders: text only
    text_ids, text_mask = encode(tokenizer, ["pick up the red block", "open the drawer"])
    with torch.no_grad():
        assert bb(images(2, 0), text_ids, text_mask).hidden.shape == (2, text_ids.shape[1], bb.hidden_size)


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_roundtrip(name, tokenizer, tmp_path):
    bb = build(name, tokenizer, image_size=32).eval()
    bb.model.save_pretrained(tmp_path)
    loaded = build_backbone(BackboneSpec(name, pretrained=str(tmp_path)), tokenizer).eval()
    assert loaded.image_size == 32 and loaded.tokens_per_image == bb.tokens_per_image == 4
    ids, mask = encode(tokenizer, TEXTS)
    imgs = images(2, 2, size=48)  # resized to the tower's 32x32
    with torch.no_grad():
        a = bb(imgs, ids, mask, return_logits=True)
        b = loaded(imgs, ids, mask, return_logits=True)
    torch.testing.assert_close(b.hidden, a.hidden, atol=0, rtol=0)
    torch.testing.assert_close(b.logits, a.logits, atol=0, rtol=0)


def test_llava_full_feature_strategy_keeps_cls(tokenizer):
    bb = build("llava", tokenizer, overrides={"feature_select": "full", "feature_layer": -1}).eval()
    assert bb.tokens_per_image == (64 // 16) ** 2 + 1
    ids, mask = encode(tokenizer, TEXTS)
    with torch.no_grad():
        out = bb(images(2, 2), ids, mask)
    assert out.hidden.shape == (2, ids.shape[1], bb.hidden_size) and torch.isfinite(out.hidden).all()


def test_paligemma_attention_is_causal(tokenizer):
    """PaliGemmaConfig defaults Gemma to bidirectional attention; ours must stay causal, padded or not."""
    bb = build("paligemma", tokenizer).eval()
    for texts in (TEXTS[:1], TEXTS):  # without and with padding
        ids, mask = encode(tokenizer, texts)
        later = ids.clone()
        later[0, 4] = tokenizer.convert_tokens_to_ids("drawer")
        imgs = images(len(texts), 2)
        with torch.no_grad():
            a, b = bb(imgs, ids, mask).hidden, bb(imgs, later, mask).hidden
        torch.testing.assert_close(b[0, :4], a[0, :4], atol=0, rtol=0)
        assert not torch.allclose(b[0, 4], a[0, 4])
