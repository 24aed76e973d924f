"""Special tokens: fixed names and ids that tokenizers, models and decoders all rely on.

Kept apart from data/tokenize.py so that model code (families/) needs nothing from data/.
"""

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
