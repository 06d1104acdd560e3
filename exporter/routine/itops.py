"""The words IT operations read: the monthly report's headings and notes, the SLO
burn-rate alerts and the IT-operations dashboard, written once here.

Swedish like everything the region's people read; what is our own advice,
not the routine's, is marked "inte i rutinen" (the runbooks carry the advice).
"""

from __future__ import annotations

# -- the monthly report ---------------------------------------------------------
REPORT_TITLE = "Tillgänglighet för DICOM-överföring"
PERIOD = "Period"
TIMEZONE_NOTE = "tider i svensk tid (Europe/Stockholm); perioden tar med början men inte slutet"
ROLE_HEADINGS = {
    "link_computer": "Länkdatorer",
    "partner": "Partnerregioner",
    "relay": "Reläregioner",
}
COLUMNS = {
    "target": "Mål",
    "availability": "Tillgänglighet (minst en plats)",
    "site_availability": "Tillgänglighet från {site}",
    "outages": "Avbrott",
    "downtime": "Total avbrottstid",
    "longest": "Längsta avbrott",
    "mttr": "Medeltid till återställning",
    "unknown": "Okänd tid",
    "store": "Lagring lyckad",
}
OUTAGES_OF = "Avbrott för {target}"
OUTAGE_COLUMNS = ("Början", "Slut", "Längd", "Anmärkning")
BEGAN_BEFORE = "pågick redan vid periodens början"
LASTS_BEYOND = "pågick fortfarande vid periodens slut"
NO_OUTAGES = "Inga avbrott."
ALERTS_OF = "Larm som var aktiva för {target}"
OTHER_ALERTS = "Övriga larm som var aktiva"
ALERT_COLUMNS = ("Larm", "Plats", "Början", "Slut", "Längd")
NO_ALERTS = "Inga larm."
NOT_APPLICABLE = "-"
SITE_ANY = "minst en plats"
LEGEND = {"up": "fungerar", "down": "ur funktion", "unknown": "okänt (inga mätvärden)"}
HOW_COUNTED_HEADING = "Så räknas siffrorna"
HOW_COUNTED = (
    "Underlaget är varje lagrat mätvärde av probe_success i Prometheus, inte "
    "nedsamplade värden. Ett mätvärde gäller fram till nästa; saknas nästa längre "
    "än två mätintervall (exportern eller Prometheus var nere) räknas tiden efter "
    "ett intervall som okänd. Okänd tid räknas varken som upp eller nere utan "
    "redovisas för sig.",
    "Tillgänglighet = tid upp / (tid upp + tid nere). Ett mål räknas som uppe om "
    "minst en plats (Växjö, Ljungby) når det: det är målets SLO. Tillgängligheten "
    "från varje plats visas bredvid, så att ett fel på en plats väg syns utan att "
    "räknas som partnerns fel.",
    "Ett avbrott är en sammanhängande tid nere som är längre än rollens väntetid "
    "(for: i övervakningens konfiguration), räknat från minst en plats. Kortare "
    "störningar sänker tillgängligheten men räknas inte som avbrott. Ett avbrott "
    "som korsar periodens gräns räknas med sin del inom perioden; medeltiden till "
    "återställning räknas bara på avbrott som både började och slutade inom perioden.",
    "Lagring lyckad = andel av tiden då det senaste C-STORE-provet (högst ett per "
    "timme och mål) hade lyckats.",
    "Larmen kommer från Prometheus serie ALERTS: ett larm som var aktivt (firing) "
    "är inte detsamma som en skickad avisering. Alertmanager kan ha grupperat, "
    "tystat eller hämmat det, och ett larm som var aktivt i båda Prometheus "
    "skickas en gång.",
)

# -- the SLO burn-rate alerts ---------------------------------------------------
SLO_BURN_SUMMARY = {
    "link_computer": "Länkdator {{ $labels.ae_title }} förbrukar sin felbudget för snabbt",
    "partner": "DICOM till {{ $region }} ({{ $labels.ae_title }}) förbrukar sin "
               "felbudget för snabbt",
}
SLO_BURN_DESCRIPTION = (
    "Målet räknas som uppe när minst en plats når det, och ändå misslyckas över "
    "{threshold} av proven även från den plats som når det bäst, både de senaste "
    "{long} och de senaste {short}: {factor} gånger den takt som målet {objective} "
    "tillgänglighet över 30 dygn tillåter. I den takten är felbudgeten för 30 dygn "
    "slut inom {exhaustion}. Ett larm till IT per e-post, inte till personalen: akuta "
    "fel larmar för sig (inte i rutinen)."
)

# -- the IT-operations dashboard --------------------------------------------------
DASHBOARD_TITLE = "DICOM-överföring: IT-drift"
DASHBOARD_DESCRIPTION = (
    "Tillgänglighet, felbudget, lagring och avbrott per länkdator och partner "
    "för IT-driften; månadsrapporten gör samma beräkning: dicom-exporter report."
)
PANELS = {
    "availability_range": "Tillgänglighet över vald period (minst en plats)",
    "availability_24h": "Tillgänglighet 24 h",
    "availability_7d": "Tillgänglighet 7 dygn",
    "availability_30d": "Tillgänglighet 30 dygn",
    "budget": "Kvar av felbudgeten (30 dygn)",
    "per_site": "Tillgänglighet per plats över vald period",
    "store": "Lagring lyckad per partner över vald period",
    "ratio": "Andel lyckade prov (5 min)",
    "outages": "Avbrott (ingen plats når målet)",
    "outage_table": "Avbrott per mål över vald period",
}
OUTAGE_TABLE_DESCRIPTION = (
    "En rad per avbrott: ett mål som ingen plats nådde längre än rollens väntetid "
    "(larmet {alerts} var aktivt från varje plats). Början är när den sista "
    "platsen började se felet, slut den sista utvärderingen då alla platser "
    "fortfarande såg det. Samma avbrott som i månadsrapporten (dicom-exporter "
    "report), vars tider kommer från mätvärdena själva: här högst ett "
    "utvärderingsintervall senare (början) eller tidigare (slut)."
)
OUTAGE_COLUMNS_DASHBOARD = {
    "target": COLUMNS["target"], "start": OUTAGE_COLUMNS[0], "end": OUTAGE_COLUMNS[1],
    "duration": OUTAGE_COLUMNS[2], "reason": "Orsak",
}
LINK_RUNBOOK = "Runbook"
LINK_STATUS = "Statussidan"
ANNOTATION_ALERTS = "Larm"
