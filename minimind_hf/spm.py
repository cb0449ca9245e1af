"""SentencePiece ``tokenizer.model`` files (llama2.c, Llama 2, the COMP4901B course) as HF fast tokenizers.

:func:`convert_sentencepiece` reads the model's protobuf and builds the same tokenizer with the
``tokenizers`` library -- BPE (Llama 2's 32,000 pieces) or unigram, byte fallback, the dummy ``▁`` prefix,
the model's own normalisation (identity, or its precompiled NFKC map) and whitespace rule -- so that it
gives the ids ``sentencepiece`` gives, saves as ``tokenizer.json`` and loads with ``AutoTokenizer``. The
piece ids are kept: ``<unk>`` = 0, ``<s>`` = 1 (bos, prepended by the post-processor as llama2.c's
``encode(bos=True)`` does), ``</s>`` = 2 (eos). There is no padding piece, so padding is ``<unk>``.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, processors
from transformers import PreTrainedTokenizerFast

_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6
_UNIGRAM, _BPE = 1, 2


def _proto(path: str | Path):
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError:
        # sentencepiece's generated module needs protobuf >= 5.26 (its `runtime_version`); older protobuf (the
        # COMET stack pins 4.x) reads the same ModelProto through the copy transformers ships for protobuf 4+
        from transformers.utils import sentencepiece_model_pb2_new as sentencepiece_model_pb2
    proto = sentencepiece_model_pb2.ModelProto()
    data = Path(path).read_bytes()
    try:
        proto.ParseFromString(data)
    except Exception as err:  # protobuf's DecodeError
        raise ValueError(f"{path}: not a SentencePiece model ({err})") from None
    if not proto.pieces:
        raise ValueError(f"{path}: not a SentencePiece model (no pieces)")
    return proto


def bpe_merges(pieces: list[tuple[str, float]]) -> list[tuple[str, str]]:
    """BPE merges implied by a SentencePiece BPE vocabulary.

    Every split of a piece into two pieces, the highest-scoring (earliest-learned) merged piece first.
    """
    vocab = {piece: i for i, (piece, _) in enumerate(pieces)}
    merges: list[tuple[str, str, float]] = []
    for piece, score in pieces:
        local = [
            (piece[:i], piece[i:], score) for i in range(1, len(piece)) if piece[:i] in vocab and piece[i:] in vocab
        ]
        merges.extend(sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]])))
    merges.sort(key=lambda m: m[2], reverse=True)  # stable: ties keep piece order
    return [(left, right) for left, right, _ in merges]


def convert_sentencepiece(path: str | Path, model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """A ``PreTrainedTokenizerFast`` giving the same ids as the SentencePiece model at ``path``."""
    proto = _proto(path)
    spec, norm = proto.trainer_spec, proto.normalizer_spec
    pieces = [(p.piece, p.score) for p in proto.pieces]
    unk = proto.pieces[spec.unk_id].piece if 0 <= spec.unk_id < len(pieces) else None
    if spec.model_type == _BPE:
        vocab = {piece: i for i, (piece, _) in enumerate(pieces)}
        model = models.BPE(vocab, bpe_merges(pieces), unk_token=unk, fuse_unk=True, byte_fallback=spec.byte_fallback)
    elif spec.model_type == _UNIGRAM:
        model = models.Unigram(pieces, spec.unk_id, spec.byte_fallback)
    else:
        raise ValueError(f"{path}: SentencePiece model type {spec.model_type} is not supported (only BPE and unigram)")
    tokenizer = Tokenizer(model)

    steps = []
    if norm.precompiled_charsmap:
        steps.append(normalizers.Precompiled(norm.precompiled_charsmap))
    if norm.remove_extra_whitespaces:
        steps += [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
    if norm.add_dummy_prefix:
        steps.append(normalizers.Prepend("▁"))
    steps.append(normalizers.Replace(" ", "▁"))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            *([decoders.Strip(content=" ", left=1)] if norm.add_dummy_prefix else []),
        ]
    )
    specials = [
        AddedToken(p.piece, normalized=False, special=True) for p in proto.pieces if p.type in (_UNKNOWN, _CONTROL)
    ]
    tokenizer.add_special_tokens(specials)
    user = [AddedToken(p.piece, normalized=False) for p in proto.pieces if p.type == _USER_DEFINED]
    if user:
        tokenizer.add_tokens(user)

    bos = proto.pieces[spec.bos_id].piece if 0 <= spec.bos_id < len(pieces) else None
    eos = proto.pieces[spec.eos_id].piece if 0 <= spec.eos_id < len(pieces) else None
    pad = proto.pieces[spec.pad_id].piece if 0 <= spec.pad_id < len(pieces) else unk
    if bos is not None:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, spec.bos_id)]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        unk_token=unk,
        pad_token=pad,
        model_input_names=["input_ids", "attention_mask"],
        model_max_length=model_max_length or 1_000_000_000_000_000_019_884_624_838_656,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
