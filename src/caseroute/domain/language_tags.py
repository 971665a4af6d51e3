"""Which extended language subtags BCP 47 registers, and after which primary language."""

# From the IANA Language Subtag Registry (File-Date 2021-08-06), every record of Type extlang
# with its Prefix. RFC 5646 2.2.2: an extlang follows only its registered prefix, and each is
# also a primary language subtag of its own (``zh-yue`` is ``yue``). One registered after this
# file's date reads as its prefix (``sgn``), which no agent meets unless it lists the prefix
# too: never another spoken language. Hand-kept rather than langcodes: langcodes 3.5.1 checks
# that an extlang subtag exists but not its prefix (it parses ``en-gbr`` as extlang ``gbr``).
_REGISTERED = {
    "ar": (
        "aao abh abv acm acq acw acx acy adf aeb aec afb ajp apc apd arb arq ars ary arz "
        "auz avl ayh ayl ayn ayp bbz pga shu ssh"
    ),
    "kok": "gom knn",
    "lv": "ltg lvs",
    "ms": (
        "bjn btj bve bvu coa dup hji jak jax kvb kvr kxd lce lcf liw max meo mfa mfb min "
        "mqg msi mui orn ors pel pse tmw urk vkk vkt xmm zlm zmi zsm"
    ),
    "sgn": (
        "ads aed aen afg ase asf asp asq asw bfi bfk bog bqn bqy bvl bzs cds csc csd cse "
        "csf csg csl csn csq csr csx doq dse dsl ecs ehs esl esn eso eth fcs fse fsl fss "
        "gds gse gsg gsm gss gus hab haf hds hks hos hps hsh hsl icl iks ils inl ins ise "
        "isg isr jcs jhs jks jls jos jsl jus kgi kvk lbs lls lsb lsg lsl lsn lso lsp lst "
        "lsv lsy lws mdl mfs mre msd msr mzc mzg mzy nbs ncs nsi nsl nsp nsr nzs okl pgz "
        "pks prl prz psc psd psg psl pso psp psr pys rms rsi rsl rsm sdl sfb sfs sgg sgx "
        "slf sls sqk sqs sqx ssp ssr svk swl syy szs tse tsm tsq tss tsy tza ugn ugy ukl "
        "uks vgt vsi vsl vsv wbs xki xml xms yds ygs yhs ysl ysm zib zsl"
    ),
    "sw": "swc swh",
    "uz": "uzn uzs",
    "zh": "cdo cjy cmn cnp cpx csp czh czo gan hak hsn lzh mnp nan wuu yue",
}
EXTLANGS = {prefix: frozenset(subtags.split()) for prefix, subtags in _REGISTERED.items()}
"""Primary language subtag -> the extended language subtags registered to follow it."""


def extended_language(primary: str, subtag: str) -> bool:
    """Whether ``subtag`` after ``primary`` is a registered extended language subtag.

    ``en-gbr`` is not (``gbr`` is no extlang of ``en``, and a region is 2 letters or 3
    digits): the tag is read as ``en`` then, as RFC 4647 lookup would by truncation.

    Args:
        primary: The tag's primary language subtag, lower case.
        subtag: The subtag after it, lower case.

    Returns:
        True when the registry lists ``subtag`` as an extlang with prefix ``primary``.
    """
    return subtag in EXTLANGS.get(primary, frozenset())
