# ruff: noqa: RUF001  (full-width punctuation is correct in Chinese and Japanese text)
"""The words of the refusal page, per language. One table, so a translation is one entry.

Keys of ``MESSAGES`` are the denials' stable error codes (``Denial.error``); a code without an
entry reads as its status's family (403 ``captcha_rejected``, 5xx ``captcha_unavailable``,
other 4xx ``bad_request``). The messages never say why a check could not be made (see
``_responses``): "try again in a moment" is all a 503 tells anyone.
"""

from __future__ import annotations

DEFAULT_LANGUAGE = "en"

#: Per language: the way-back link's text and the label of the technical detail line.
TEXTS: dict[str, dict[str, str]] = {
    "en": {"back": "Go back and try again", "detail": "Details"},
    "zh-Hans": {"back": "返回并重试", "detail": "详细信息"},
    "zh-Hant": {"back": "返回並重試", "detail": "詳細資訊"},
    "es": {"back": "Volver e intentarlo de nuevo", "detail": "Detalles"},
    "fr": {"back": "Revenir et réessayer", "detail": "Détails"},
    "de": {"back": "Zurück und erneut versuchen", "detail": "Details"},
    "ja": {"back": "戻ってもう一度試す", "detail": "詳細"},
    "pt": {"back": "Voltar e tentar novamente", "detail": "Detalhes"},
}

#: Per language, per error code: the page's title and its one sentence.
MESSAGES: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "captcha_rejected": (
            "The captcha could not be verified",
            "Please solve the captcha again and resend the form.",
        ),
        "captcha_unavailable": (
            "Verification is unavailable right now",
            "Please try again in a moment.",
        ),
        "captcha_busy": ("The site is busy", "Please try again in a moment."),
        "bad_request": (
            "The request could not be read",
            "Please go back, reload the page and send the form again.",
        ),
        "body_too_large": ("The request is too large", "Please send less data at once."),
        "body_timeout": (
            "The request took too long to arrive",
            "Please check your connection and send the form again.",
        ),
    },
    "zh-Hans": {
        "captcha_rejected": ("验证码验证失败", "请重新完成验证码后再次提交表单。"),
        "captcha_unavailable": ("验证服务暂时不可用", "请稍后再试。"),
        "captcha_busy": ("网站繁忙", "请稍后再试。"),
        "bad_request": ("无法读取该请求", "请返回并刷新页面，然后重新提交表单。"),
        "body_too_large": ("请求内容过大", "请减少一次提交的数据量。"),
        "body_timeout": ("请求传输超时", "请检查网络连接后重新提交表单。"),
    },
    "zh-Hant": {
        "captcha_rejected": ("驗證碼驗證失敗", "請重新完成驗證碼後再次送出表單。"),
        "captcha_unavailable": ("驗證服務暫時無法使用", "請稍後再試。"),
        "captcha_busy": ("網站忙碌中", "請稍後再試。"),
        "bad_request": ("無法讀取此請求", "請返回並重新整理頁面，然後再次送出表單。"),
        "body_too_large": ("請求內容過大", "請減少一次送出的資料量。"),
        "body_timeout": ("請求傳輸逾時", "請檢查網路連線後再次送出表單。"),
    },
    "es": {
        "captcha_rejected": (
            "No se pudo verificar el captcha",
            "Resuelva el captcha de nuevo y vuelva a enviar el formulario.",
        ),
        "captcha_unavailable": (
            "La verificación no está disponible ahora",
            "Inténtelo de nuevo en unos momentos.",
        ),
        "captcha_busy": ("El sitio está ocupado", "Inténtelo de nuevo en unos momentos."),
        "bad_request": (
            "No se pudo leer la solicitud",
            "Vuelva atrás, recargue la página y envíe el formulario de nuevo.",
        ),
        "body_too_large": (
            "La solicitud es demasiado grande",
            "Envíe menos datos a la vez.",
        ),
        "body_timeout": (
            "La solicitud tardó demasiado en llegar",
            "Compruebe su conexión y envíe el formulario de nuevo.",
        ),
    },
    "fr": {
        "captcha_rejected": (
            "Le captcha n'a pas pu être vérifié",
            "Veuillez résoudre le captcha à nouveau et renvoyer le formulaire.",
        ),
        "captcha_unavailable": (
            "La vérification est momentanément indisponible",
            "Veuillez réessayer dans un instant.",
        ),
        "captcha_busy": ("Le site est occupé", "Veuillez réessayer dans un instant."),
        "bad_request": (
            "La requête n'a pas pu être lue",
            "Veuillez revenir en arrière, recharger la page et renvoyer le formulaire.",
        ),
        "body_too_large": (
            "La requête est trop volumineuse",
            "Veuillez envoyer moins de données à la fois.",
        ),
        "body_timeout": (
            "La requête a mis trop de temps à arriver",
            "Vérifiez votre connexion et renvoyez le formulaire.",
        ),
    },
    "de": {
        "captcha_rejected": (
            "Das Captcha konnte nicht bestätigt werden",
            "Bitte lösen Sie das Captcha erneut und senden Sie das Formular noch einmal.",
        ),
        "captcha_unavailable": (
            "Die Prüfung ist gerade nicht verfügbar",
            "Bitte versuchen Sie es gleich noch einmal.",
        ),
        "captcha_busy": (
            "Die Website ist ausgelastet",
            "Bitte versuchen Sie es gleich noch einmal.",
        ),
        "bad_request": (
            "Die Anfrage konnte nicht gelesen werden",
            "Bitte gehen Sie zurück, laden Sie die Seite neu und senden Sie das Formular erneut.",
        ),
        "body_too_large": (
            "Die Anfrage ist zu groß",
            "Bitte senden Sie weniger Daten auf einmal.",
        ),
        "body_timeout": (
            "Die Anfrage kam nicht rechtzeitig an",
            "Bitte prüfen Sie Ihre Verbindung und senden Sie das Formular erneut.",
        ),
    },
    "ja": {
        "captcha_rejected": (
            "CAPTCHA を確認できませんでした",
            "もう一度 CAPTCHA を解いてから、フォームを送信してください。",
        ),
        "captcha_unavailable": (
            "現在、確認を行うことができません",
            "しばらくしてからもう一度お試しください。",
        ),
        "captcha_busy": ("サイトが混み合っています", "しばらくしてからもう一度お試しください。"),
        "bad_request": (
            "リクエストを読み取れませんでした",
            "前のページに戻り、再読み込みしてからフォームを送信してください。",
        ),
        "body_too_large": (
            "リクエストが大きすぎます",
            "一度に送信するデータを減らしてください。",
        ),
        "body_timeout": (
            "リクエストの受信に時間がかかりすぎました",
            "接続を確認して、もう一度フォームを送信してください。",
        ),
    },
    "pt": {
        "captcha_rejected": (
            "Não foi possível verificar o captcha",
            "Resolva o captcha novamente e envie o formulário outra vez.",
        ),
        "captcha_unavailable": (
            "A verificação está indisponível no momento",
            "Tente novamente em instantes.",
        ),
        "captcha_busy": ("O site está ocupado", "Tente novamente em instantes."),
        "bad_request": (
            "Não foi possível ler a solicitação",
            "Volte, recarregue a página e envie o formulário novamente.",
        ),
        "body_too_large": (
            "A solicitação é grande demais",
            "Envie menos dados de uma vez.",
        ),
        "body_timeout": (
            "A solicitação demorou demais para chegar",
            "Verifique sua conexão e envie o formulário novamente.",
        ),
    },
}

__all__ = ["DEFAULT_LANGUAGE", "MESSAGES", "TEXTS"]
