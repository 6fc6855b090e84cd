"""The datasets unroll knows: where each comes from and what its files must hash to.

Every dataset lives in one folder (``ptb/``, ``tinyshakespeare/``, ...) with the same layout
in the local mirror (``UNROLL_DATA_DIR``) and in the download cache (``UNROLL_CACHE_DIR``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unroll.errors import DataError
from unroll.text import TextSpec


@dataclass(frozen=True)
class Source:
    """One download: the file itself, or an archive whose ``members`` become the files."""

    url: str  # or, for a dataset made here from another, "unroll:NAME" (see Dataset.build)
    sha256: str | None = None  # of the download itself, where one is published
    members: dict[str, str] = field(default_factory=dict)  # archive member -> file name
    fallbacks: tuple[str, ...] = ()  # other addresses of the same file, tried in turn when one fails


@dataclass(frozen=True)
class Dataset:
    name: str
    folder: str  # folder in the mirror and in the cache
    description: str
    source: Source
    files: dict[str, str]  # file name -> sha256, as the cache holds them after a download
    splits: dict[str, str] = field(default_factory=dict)  # split -> file name (language modelling)
    text: TextSpec = field(default_factory=TextSpec)
    fractions: tuple[float, ...] = ()  # one file cut into train/valid(/test) by these fractions
    mirror_files: dict[str, str] | None = None  # a mirror that holds other files than the cache
    homepage: str = ""
    # made here from another dataset (source.url "unroll:NAME"): "module:function" writing the files
    # into a folder; they are checked against ``files`` like a download
    build: str | None = None

    @property
    def is_corpus(self) -> bool:
        """Whether load_corpus can read it (IMDB is for classification)."""
        return bool(self.splits)


PTB = Dataset(
    name="ptb",
    folder="ptb",
    description="Penn Treebank, Mikolov's LM version: 10k words, one sentence a line",
    source=Source(
        url="http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz",
        members={f"simple-examples/data/ptb.{s}.txt": f"ptb.{s}.txt" for s in ("train", "valid", "test")},
    ),
    files={
        "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
        "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
        "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
    },
    splits={s: f"ptb.{s}.txt" for s in ("train", "valid", "test")},
    text=TextSpec(level="whitespace", unit="line", eos=True),
    homepage="http://www.fit.vutbr.cz/~imikolov/rnnlm/",
)

TINYSHAKESPEARE = Dataset(
    name="tinyshakespeare",
    folder="tinyshakespeare",
    description="Tiny Shakespeare (char-rnn): 1.1M characters, first 90% train, last 10% valid",
    source=Source(
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    ),
    files={"input.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"},
    splits={"train": "input.txt"},
    text=TextSpec.for_level("char"),
    fractions=(0.9, 0.1),
    homepage="https://github.com/karpathy/char-rnn",
)

WIKITEXT2 = Dataset(
    name="wikitext2",
    folder="wikitext-2",
    description="WikiText-2 v1, tokenized: 2M training words, 33k vocabulary",
    source=Source(
        # The authors' S3 bucket (the address in the paper) has closed; Stephen Merity hosts the same
        # archive at wikitext.smerity.com. The extracted files' checksums are checked either way.
        url="https://wikitext.smerity.com/wikitext-2-v1.zip",
        fallbacks=("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",),
        sha256="92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c",
        members={f"wikitext-2/wiki.{s}.tokens": f"{s}.txt" for s in ("train", "valid", "test")},
    ),
    files={
        "train.txt": "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
        "valid.txt": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
        "test.txt": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
    },
    splits={s: f"{s}.txt" for s in ("train", "valid", "test")},
    text=TextSpec(level="whitespace", unit="line", eos=True),
    homepage="https://blog.salesforceairesearch.com/the-wikitext-long-term-dependency-language-modeling-dataset/",
)

IMDB = Dataset(
    name="imdb",
    folder="imdb",
    description="IMDB movie reviews v1.0 (Maas et al. 2011): 25k train + 25k test pos/neg, 50k unlabeled",
    source=Source(
        url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
    ),
    files={"aclImdb_v1.tar.gz": "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"},
    # The project's mirror splits the authors' archive into three (same aclImdb/ paths inside).
    mirror_files={
        "aclImdb_v1_train.tar.gz": "50220590b39f06175d4698e054c9d9ea31ecbf5c616ec9e5e4dfa24edac3b0bd",
        "aclImdb_v1_test.tar.gz": "9391d7c6e4495e3ca81fcb8f79f652f65655124bdb3167bc5a34196ad9fa3c06",
        "aclImdb_v1_unsup.tar.gz": "222b03accfe6ac3472a04deed5dcf3f7433a8281efd39830b139b505acd9ca97",
    },
    homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
)

IMDB_LM = Dataset(
    name="imdb-lm",
    folder="imdb-lm",
    description="IMDB's 25k train + 50k unlabeled reviews as a word-level LM corpus, one review a line, "
                "none of the sentiment test reviews; about 17M words, 100k+ word types",
    source=Source(url="unroll:imdb"),
    build="unroll.data.imdb:write_lm_corpus",
    files={
        "train.txt": "b5f0ccd7d03791a751af3a0e9e6c55dfa7be00a8be8dcc388620dbedcba3c251",
        "valid.txt": "8b04e593768e505e14d09e0726a0ca366efa1e13d5e0c26917418f46db95f679",
        "test.txt": "94876e8ad56fe5417f907436180f59d80baf2c5acdcaf4e08164691c6ca183cd",
    },
    splits={s: f"{s}.txt" for s in ("train", "valid", "test")},
    text=TextSpec(level="word", unit="line", eos=True),
    homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
)

WIKITEXT103 = Dataset(
    name="wikitext103",
    folder="wikitext-103",
    description="WikiText-103 v1, tokenized: 103M training words, 267k vocabulary",
    source=Source(
        url="https://wikitext.smerity.com/wikitext-103-v1.zip",
        fallbacks=("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",),
        members={f"wikitext-103/wiki.{s}.tokens": f"{s}.txt" for s in ("train", "valid", "test")},
    ),
    # Only SHA-1s of these files are published (GluonNLP's registry; its WikiText-2 SHA-1s match
    # the files verified above). The archive's own digest is not checked: its members are.
    files={
        "train.txt": "sha1:b7497e2dfe77e72cfef5e3dbc61b7b53712ac211",
        "valid.txt": "sha1:c326ac59dc587676d58c422eb8a03e119582f92b",
        "test.txt": "sha1:8a5befc548865cec54ed4273cf87dbbad60d1e47",
    },
    splits={s: f"{s}.txt" for s in ("train", "valid", "test")},
    text=TextSpec(level="whitespace", unit="line", eos=True),
    homepage="https://blog.salesforceairesearch.com/the-wikitext-long-term-dependency-language-modeling-dataset/",
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (PTB, TINYSHAKESPEARE, WIKITEXT2, WIKITEXT103, IMDB, IMDB_LM)}


def get_dataset(name: str) -> Dataset:
    """The registered dataset ``name``; an unknown name lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}") from None
