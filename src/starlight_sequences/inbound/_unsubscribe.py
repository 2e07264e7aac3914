"""Recognising a reply that asks, and only asks, to be taken off the list.

A reply is an unsubscribe request when its own text, folded, holds a request phrase and almost
nothing else: after the phrase, politeness, greetings, sign-offs with a name and the words a
request is made of ("me", "your list", "emails") are set aside, at most one other word may be
left, and no negation ("don't stop"). "Stop" in a longer sentence ("we can't stop growing, tell
me more") leaves too many words and stays a reply. When unsure it is a reply: both stop the
contact, and a person reads replies.
"""

from __future__ import annotations

import re
from typing import Final

from starlight_sequences.inbound._folding import fold

MAX_REQUEST_CHARS: Final = 300
"""A text longer than this (after quotes and signature are removed) is never a bare request."""
_MAX_OTHER_WORDS: Final = 1
_MAX_NAME_WORDS: Final = 3


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_REQUESTS: Final = re.compile(
    r"(?<![\w'-])(?:"
    + "|".join(
        (
            # English
            r"un-?subscribe(?: me)?",
            r"opt(?:ing)?(?: me)?[- ]out",
            r"remove me",
            r"remove my (?:e-?mail|address|email address|details|name|data)",
            r"take me off",
            r"take my (?:name|e-?mail|address) off",
            r"delete me",
            r"delete my (?:e-?mail|address|data|details)",
            r"stop (?:emailing|e-mailing|mailing|contacting|messaging|spamming|writing to"
            r"|sending)",
            r"stop",
            r"no more (?:e-?mails|mails|messages)",
            r"do not (?:e-?mail|contact|write to) me",
            r"don't (?:e-?mail|contact|write to) me",
            r"leave me alone",
            # German
            r"abmelden",
            r"abmeldung",
            r"melden sie mich(?: bitte)? ab",
            r"melde mich(?: bitte)? ab",
            r"austragen",
            r"tragen sie mich(?: bitte)? aus",
            r"trag mich(?: bitte)? aus",
            r"abbestellen",
            r"keine (?:weiteren )?(?:e-?mails|mails|nachrichten|werbung)(?: mehr)?",
            r"(?:loschen|entfernen) sie (?:mich|meine (?:e-?mail-?adresse|e-?mail|adresse|daten))",
            r"nehmen sie mich(?: bitte)? aus (?:ihrem|dem|ihrer|der) "
            r"(?:verteiler|liste|mailingliste|e-?mail-?verteiler)",
            r"stopp",
            # French
            r"(?:me )?desinscrire",
            r"desinscrivez[- ]moi",
            r"desinscription",
            r"(?:me )?desabonner",
            r"desabonnez[- ]moi",
            r"desabonnement",
            r"(?:retirez|supprimez|effacez|enlevez)[- ]moi",
            r"me (?:retirer|supprimer|desinscrire|desabonner)",
            r"ne (?:plus|pas) (?:me )?(?:contacter|ecrire|recevoir)",
            r"arretez de m'(?:ecrire|envoyer|contacter)",
            r"ne (?:plus|pas) m'(?:ecrire|envoyer|contacter)",
            r"arretez",
            r"plus de (?:mails|e-?mails|messages)",
            # Spanish
            r"(?:darme|darse|dar|dadme|denme|deme) de baja",
            r"baja",
            r"(?:eliminarme|eliminenme|elimineme|quitarme|quitenme|quiteme|sacarme|saquenme"
            r"|borrarme|borrenme)",
            r"no me (?:envien|manden|escriban|contacten) mas",
            r"cancelar (?:la |mi )?suscripcion",
            r"desuscribir(?:me|se)?",
            r"desuscripcion",
            r"basta",
            # Portuguese
            r"cancelar (?:a |minha )?(?:inscricao|subscricao|assinatura)",
            r"(?:me )?descadastr\w*",
            r"(?:remova|removam|tire|tirem)[- ]me",
            r"me (?:remova|removam|remover|tire|tirem|tirar)",
            r"nao (?:quero )?receber mais",
            r"nao me (?:envie|enviem|mande|mandem) mais",
            r"sair da lista",
            r"pare",
            r"parem",
            # Italian
            r"cancellami",
            r"cancellatemi",
            r"disiscrivimi",
            r"disiscrivetemi",
            r"disiscriver(?:mi|si)",
            r"disiscrizione",
            r"rimuovimi",
            r"rimuovetemi",
            r"toglietemi",
            r"toglimi",
            r"non (?:mi )?(?:inviate|scrivete|contattate|mandate)(?:mi)? piu",
            r"cancellazione",
            # Dutch
            r"afmelden",
            r"meld (?:me|mij)(?: alstublieft| aub| a\.u\.b\.)? af",
            r"uitschrijven",
            r"schrijf (?:me|mij)(?: alstublieft| aub| a\.u\.b\.)? uit",
            r"verwijder (?:me|mij)",
            r"geen (?:e-?mails|mails|berichten) meer",
            r"stoppen",
        )
    )
    + r")(?![\w'-])"
)
_FILLER: Final = _words(
    """
    me my mine i us our ours we from your yours the this these those that list lists mailing
    mailinglist e-mail e-mails email emails mail mails message messages newsletter newsletters
    please pls plz thanks thank you thx ty ok okay immediately now asap all any future further
    more again and or of off to on at a an address database contact contacts communications
    mailings distribution it kind with
    bitte danke mich mir mein meine meinen ihre ihrem ihren ihrer ihr sie von aus dem der den
    die das diesem dieser diese liste verteiler mailingliste nachrichten adresse e-mail-adresse
    und sofort zukunft in kunftig weiteren weitere ab mehr vielen dank mit freundlichen besten
    herzlichen liebe schonen
    merci svp stp s'il vous plait je moi de du la le les votre vos ta ton liste diffusion et
    mes mon adresse courriels courriel
    por favor gracias mi mis del el lo su sus esta este lista correos correo mensajes y
    direccion favor ya un una muchas
    obrigado obrigada meu minha da do o sua seu desta deste mensagens e endereco agora
    per grazie mi mio mia dalla della il vostra vostro messaggi indirizzo subito
    alstublieft aub a.u.b graag bedankt dank dankjewel u uw je jullie mij mijn van uit het
    deze lijst mailinglijst berichten adres met
    """
)
_GREETINGS: Final = _words(
    """
    hi hello hey dear hallo liebe lieber sehr geehrte geehrter guten tag morgen bonjour salut
    cher chere madame monsieur hola buenos buenas dias tardes estimado estimada ola bom dia
    boa tarde prezado prezada ciao buongiorno gentile salve hoi beste goedemorgen goedemiddag
    beste geachte
    """
)
_CLOSINGS: Final = _words(
    """
    thanks thank regards best cheers sincerely br kr rgds danke gruss grusse gruessen mfg lg
    vg cordialement salutations merci bien saludos gracias atentamente obrigado obrigada
    cumprimentos atenciosamente abracos grazie saluti cordiali distinti groeten groet
    bedankt vriendelijke grussen
    """
)
_NEGATIONS: Final = _words(
    """
    not no don't dont never nicht kein keine nie ne pas n'est jamais non nao nunca niet
    geen nooit can't cannot won't
    """
)
_WORD: Final = re.compile(r"[^\W\d_]+(?:['.-][^\W\d_]+)*\.?|\d+")


def request_phrase(text: str) -> str | None:
    """The request phrase when ``text`` is essentially only a request to unsubscribe."""
    if len(text) > MAX_REQUEST_CHARS:
        return None
    folded = fold(text)
    phrases = [match.group(0) for match in _REQUESTS.finditer(folded)]
    if not phrases:
        return None
    rest = _REQUESTS.sub(" | ", folded)
    words = [word.rstrip(".") for word in _WORD.findall(rest)]
    if _others(words) > _MAX_OTHER_WORDS:
        return None
    return phrases[0]


def _others(words: list[str]) -> int:
    """How many words are neither filler, nor greeting or sign-off with a name (a negation
    counts as many)."""
    others = 0
    after_greeting = 0
    for index, word in enumerate(words):
        if word in _NEGATIONS:
            return _MAX_OTHER_WORDS + 1
        if word in _GREETINGS:
            after_greeting = 2
            continue
        if word in _CLOSINGS:
            if len(words) - index - 1 <= _MAX_NAME_WORDS:
                break  # a sign-off, then at most a name
            continue
        if word in _FILLER:
            continue
        if after_greeting:
            after_greeting -= 1
            continue
        others += 1
    return others
