// Cobro Checkout: the customer's side of one intent. The client secret comes from the
// address's fragment (never sent to a server); with it the page reads the intent and
// the methods it allows, confirms it, and follows it live to its final status.
"use strict";

(function () {
  var root = document.getElementById("checkout");
  var T = JSON.parse(document.getElementById("messages").textContent);
  var intentId = root.dataset.intentId;
  var mode = root.dataset.mode;
  var locale = root.dataset.locale;
  var sandbox = root.dataset.sandbox === "true";
  var FINAL = { SUCCEEDED: 1, FAILED: 1, CANCELED: 1, EXPIRED: 1 };

  var INTENT_FIELDS =
    "id status version method description expiresAt installments amount { amount currency } " +
    "lastError { code message } nextAction { __typename " +
    "... on OxxoVoucher { reference voucherExpiresAt: expiresAt barcodeSvg hostedVoucherUrl } " +
    "... on SpeiInstructions { clabe bank beneficiary reference speiExpiresAt: expiresAt hostedInstructionsUrl } " +
    "... on CryptoInstructions { asset network address cryptoAmount rate quoteExpiresAt qrSvg hostedInstructionsUrl } " +
    "... on RedirectToUrl { url } }";
  var READ = "query Checkout($id: ID!) { paymentIntent(id: $id) { " + INTENT_FIELDS + " } }";
  var METHODS = "query Methods($amount: Decimal!, $currency: Currency!) { " +
    "paymentMethods(amount: $amount, currency: $currency) { type available " +
    "tokenizers { provider publishableKey tokenizeUrl } installmentPlans { count } } }";
  var CONFIRM = "mutation Confirm($input: ConfirmPaymentIntentInput!) { confirmPaymentIntent(input: $input) { " +
    "paymentIntent { " + INTENT_FIELDS + " } errors { code message field } } }";
  var FOLLOW = "subscription Follow($id: ID!, $afterVersion: Int) { " +
    "paymentIntentUpdated(id: $id, afterVersion: $afterVersion) { " + INTENT_FIELDS + " } }";

  var secret = readSecret();
  var intent = null;
  var merchant = "";
  var methods = [];

  // ---- the pieces of a page -------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name.slice(0, 2) === "on") node.addEventListener(name.slice(2), attrs[name]);
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function show(nodes) {
    root.replaceChildren.apply(root, nodes.filter(Boolean));
  }

  // "1234.5" MXN as "$1,234.50 MXN", from the decimal string itself (never a float).
  function money(value) {
    var parts = value.amount.split(".");
    var whole = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var cents = ((parts[1] || "") + "00").slice(0, 2);
    return "$" + whole + "." + cents + " " + value.currency;
  }

  function when(iso) {
    return new Intl.DateTimeFormat(locale, {
      year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit",
      timeZone: "America/Mexico_City", timeZoneName: "short",
    }).format(new Date(iso));
  }

  function svgImage(svg, label) {
    return el("img", { src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg), alt: label });
  }

  function copyButton(value, label) {
    var button = el("button", { type: "button", class: "secondary copy no-print", text: T.copy,
      "aria-label": T.copy + ": " + label });
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(value).then(function () {
        button.textContent = T.copied;
        setTimeout(function () { button.textContent = T.copy; }, 2000);
      });
    });
    return button;
  }

  function fact(label, value, copyable) {
    return [el("dt", { text: label }),
      el("dd", {}, [el("span", { class: copyable ? "mono" : "", text: value }), copyable ? copyButton(value, label) : null])];
  }

  function facts(rows) {
    var list = el("dl", { class: "facts" });
    rows.forEach(function (row) { row.forEach(function (node) { list.appendChild(node); }); });
    return list;
  }

  function header() {
    return el("div", { class: "summary" }, [
      merchant ? el("p", { class: "merchant", text: T.pay_to + " " + merchant }) : null,
      el("h1", { class: "amount", id: "amount", text: money(intent.amount) }),
      intent.description ? el("p", { class: "muted", text: intent.description }) : null,
    ]);
  }

  function statusBox() {
    var status = intent.status;
    if (status === "SUCCEEDED") {
      return el("div", { class: "status paid", role: "status", id: "status", "data-status": status }, [
        document.createTextNode(T.status_SUCCEEDED),
        intent.installments ? el("p", { id: "plan", text: planName(intent.installments) }) : null,
      ]);
    }
    if (FINAL[status]) {
      var box = el("div", { class: "status final", role: "alert", id: "status", "data-status": status,
        text: T["status_" + status] });
      if (status === "FAILED" && intent.lastError) box.appendChild(el("p", { text: intent.lastError.message }));
      return box;
    }
    var waiting = status === "PROCESSING" ? T.status_PROCESSING : T.waiting;
    return el("div", { class: "status waiting", role: "status", id: "status", "data-status": status, text: waiting });
  }

  // ---- what each state shows -------------------------------------------------------

  function voucher(action, printable) {
    return el("section", { class: "voucher", "aria-labelledby": "voucher-title" }, [
      el("h2", { id: "voucher-title", text: T.voucher_title }),
      facts([
        fact(T.amount, money(intent.amount)),
        fact(T.voucher_reference, action.reference, true),
        fact(T.voucher_pay_by, when(action.voucherExpiresAt)),
      ]),
      el("div", { class: "barcode" }, [svgImage(action.barcodeSvg, T.voucher_barcode + " " + action.reference)]),
      el("p", { text: T.voucher_steps }),
      el("p", { class: "hint", text: T.voucher_commission }),
      el("p", { class: "hint", text: T.voucher_type_reference }),
      el("div", { class: "actions" }, [
        el("button", { type: "button", class: "secondary", text: T.print, onclick: function () { window.print(); } }),
        printable ? null : el("a", { class: "button secondary", href: localLink(action.hostedVoucherUrl), text: T.voucher_open }),
      ]),
    ]);
  }

  function spei(action, printable) {
    return el("section", { class: "spei", "aria-labelledby": "spei-title" }, [
      el("h2", { id: "spei-title", text: T.spei_title }),
      el("p", { text: T.spei_steps }),
      facts([
        fact(T.spei_amount, intent.amount.amount, true),
        fact(T.spei_clabe, action.clabe, true),
        fact(T.spei_bank, action.bank),
        fact(T.spei_beneficiary, action.beneficiary, true),
        fact(T.spei_reference, action.reference, true),
        action.speiExpiresAt ? fact(T.pay_before, when(action.speiExpiresAt)) : [],
      ]),
      el("div", { class: "actions" }, [
        el("button", { type: "button", class: "secondary", text: T.print, onclick: function () { window.print(); } }),
        printable ? null : el("a", { class: "button secondary", href: localLink(action.hostedInstructionsUrl), text: T.instructions_open }),
      ]),
    ]);
  }

  function cryptoInstructions(action, printable) {
    return el("section", { class: "crypto", "aria-labelledby": "crypto-title" }, [
      el("h2", { id: "crypto-title", text: T.crypto_title }),
      el("div", { class: "qr" }, [svgImage(action.qrSvg, T.crypto_qr)]),
      facts([
        fact(T.crypto_amount, action.cryptoAmount + " " + action.asset, false),
        fact(T.crypto_address, action.address, true),
        fact(T.crypto_network, action.network),
        fact(T.crypto_rate, action.rate),
        fact(T.pay_before, when(action.quoteExpiresAt)),
      ]),
      el("div", { class: "actions" }, [
        printable ? null : el("a", { class: "button secondary", href: localLink(action.hostedInstructionsUrl), text: T.instructions_open }),
      ]),
    ]);
  }

  function threeDSecure(action) {
    return el("section", { class: "three-ds", "aria-labelledby": "three-ds-title" }, [
      el("h2", { id: "three-ds-title", text: T.three_ds_title }),
      el("p", { text: T.three_ds_help }),
      el("iframe", { class: "three-ds", src: action.url, title: T.three_ds_title }),
      el("p", {}, [el("a", { href: action.url, target: "_blank", rel: "noopener", text: T.three_ds_open })]),
    ]);
  }

  // Our own hosted page, kept in this language.
  function localLink(url) {
    var link = new URL(url);
    if (root.dataset.lang === "en") link.search = "?lang=en";
    return link.pathname + link.search + link.hash;
  }

  function action() {
    var next = intent.nextAction;
    if (!next || FINAL[intent.status]) return null;
    var printable = mode !== "checkout";
    switch (next.__typename) {
      case "OxxoVoucher": return voucher(next, printable);
      case "SpeiInstructions": return spei(next, printable);
      case "CryptoInstructions": return cryptoInstructions(next, printable);
      case "RedirectToUrl": return threeDSecure(next);
    }
    return null;
  }

  // ---- choosing and paying -----------------------------------------------------------

  function methodChooser() {
    var form = el("form", { class: "pay", id: "pay", novalidate: "" });
    var list = el("fieldset", { class: "methods" }, [el("legend", { text: T.choose_method })]);
    var details = el("div", { id: "method-form" });
    methods.forEach(function (method, index) {
      var usable = method.available && (method.type !== "CARD" || cardTokenizers(method).length > 0);
      var input = el("input", { type: "radio", name: "method", value: method.type, id: "method-" + method.type });
      if (!usable) input.disabled = true;
      var label = el("label", { class: "method", for: "method-" + method.type, "aria-disabled": String(!usable) }, [
        input, el("span", { text: T["method_" + method.type] || method.type }),
        usable ? null : el("span", { class: "hint", text: " · " + (method.available ? T.card_no_tokenizer : T.method_unavailable) }),
      ]);
      input.addEventListener("change", function () { details.replaceChildren(methodForm(method.type)); });
      list.appendChild(label);
    });
    form.appendChild(list);
    form.appendChild(details);
    return form;
  }

  function field(id, label, attrs) {
    attrs.id = id; attrs.name = id;
    return el("div", {}, [el("label", { for: id, text: label }), el("input", attrs)]);
  }

  function methodForm(type) {
    var error = el("p", { class: "error", id: "form-error", role: "alert" });
    var button = el("button", { type: "submit", class: "primary", id: "submit" });
    var fields = [];
    if (type === "CARD") {
      button.textContent = T.pay + " " + money(intent.amount);
      fields = [
        field("card-number", T.card_number, { inputmode: "numeric", autocomplete: "cc-number", required: "" }),
        el("div", { class: "row" }, [
          field("card-expiry", T.card_expiry, { inputmode: "numeric", autocomplete: "cc-exp", placeholder: "MM/AA", required: "" }),
          field("card-cvc", T.card_cvc, { inputmode: "numeric", autocomplete: "cc-csc", required: "" }),
        ]),
        field("card-name", T.card_name, { autocomplete: "cc-name" }),
        installmentChooser(),
        sandbox ? el("p", { class: "hint", text: T.card_test_hint }) : null,
      ];
    } else if (type === "OXXO") {
      button.textContent = T.oxxo_get;
      fields = [
        field("oxxo-name", T.oxxo_name, { autocomplete: "name" }),
        field("oxxo-email", T.oxxo_email, { type: "email", autocomplete: "email" }),
      ];
    } else if (type === "SPEI") {
      button.textContent = T.spei_get;
    } else {
      button.textContent = T.crypto_get;
    }
    var box = el("div", {}, fields.concat([error, button]));
    var form = document.getElementById("pay");
    form.onsubmit = function (event) {
      event.preventDefault();
      submit(type, error, button);
    };
    return box;
  }

  function value(id) {
    var node = document.getElementById(id);
    return node ? node.value.trim() : "";
  }

  function submit(type, error, button) {
    error.textContent = "";
    var prepared = type === "CARD" ? tokenizeCard({
      number: value("card-number"), expiry: value("card-expiry"), cvc: value("card-cvc"), name: value("card-name"),
    }).then(function (tokens) {
      return { card: { tokens: tokens, installments: +value("card-installments") || null } };
    }) : Promise.resolve(
      type === "OXXO" ? { oxxo: { customerName: value("oxxo-name") || null, email: value("oxxo-email") || null } }
        : type === "SPEI" ? { spei: {} } : { crypto: {} });
    button.disabled = true;
    var label = button.textContent;
    button.textContent = T.working;
    prepared.then(function (inputs) {
      var input = Object.assign({ id: intentId, method: type, idempotencyKey: idempotencyKey(type, inputs) }, inputs);
      return graphql(CONFIRM, { input: input });
    }).then(function (data) {
      var result = data.confirmPaymentIntent;
      if (result.errors.length) throw new Error(result.errors[0].message);
      forgetKey(type);
      update(result.paymentIntent);
    }).catch(function (problem) {
      error.textContent = problem.message || T.error_generic;
      button.disabled = false;
      button.textContent = label;
      error.focus && error.focus();
    });
  }

  // One key per attempt to pay with a method and its inputs: a retry after a lost
  // answer gets the first result (the same voucher), never a second one.
  function idempotencyKey(type, inputs) {
    var slot = "cobro:" + intentId + ":" + type + ":" + JSON.stringify(inputs);
    var key = sessionStorage.getItem(slot);
    if (!key) {
      key = "checkout_" + crypto.randomUUID();
      sessionStorage.setItem(slot, key);
    }
    return key;
  }

  function forgetKey(type) {
    Object.keys(sessionStorage).forEach(function (slot) {
      if (slot.indexOf("cobro:" + intentId + ":" + type + ":") === 0) sessionStorage.removeItem(slot);
    });
  }

  // ---- cards: a token per PSP, meses sin intereses ------------------------------------

  function cardMethod() {
    return methods.filter(function (method) { return method.type === "CARD"; })[0] || null;
  }

  // The card PSPs on the route this page can mint a token at. In the sandbox every
  // one of them answers at its `tokenizeUrl`; outside it, only those whose own
  // browser library is on the page (BROWSER_TOKENIZERS).
  function cardTokenizers(method) {
    return ((method && method.tokenizers) || []).filter(function (tokenizer) {
      return Boolean(tokenizerFunction(tokenizer));
    });
  }

  function tokenizerFunction(tokenizer) {
    return sandbox ? sandboxTokenizer : BROWSER_TOKENIZERS[tokenizer.provider];
  }

  // Outside the sandbox each PSP's own browser library sits here, behind the same
  // signature (card, tokenizer) -> Promise of its token: Stripe.js with the
  // tokenizer's `publishableKey`, Conekta.js (`Conekta.Token.create`), ... The card
  // goes from the browser to the PSP and never to Cobro (PCI DSS SAQ A, README).
  // None is bundled yet, so outside the sandbox the page offers no card form.
  var BROWSER_TOKENIZERS = {};

  // The sandbox's tokenizer (`POST /sandbox/tokens`), as a PSP's library would call it.
  function sandboxTokenizer(card, tokenizer) {
    return fetch(sameOrigin(tokenizer.tokenizeUrl), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        provider: tokenizer.provider, number: card.number, expMonth: card.expMonth,
        expYear: card.expYear, cvc: card.cvc,
      }),
    }).then(function (response) {
      return response.json().then(function (body) {
        if (response.ok && body.token) return body.token;
        throw new Error(tokenizerProblem(body.error || ""));
      });
    });
  }

  // The sandbox is this server: its tokenizer is called on the page's own origin.
  function sameOrigin(url) {
    var target = new URL(url, location.href);
    return target.pathname + target.search;
  }

  // The sandbox's reasons, in the page's language.
  function tokenizerProblem(reason) {
    if (/^number/.test(reason)) return T.card_unknown_test;
    if (/^exp/.test(reason)) return T.card_expiry_invalid;
    if (/^cvc/.test(reason)) return T.card_cvc_invalid;
    return T.error_generic;
  }

  // Card details in, one token per card PSP on the route out ([{provider, token}]),
  // so the payment can fail over from one PSP to the next. A PSP whose tokenizer does
  // not answer is left out (the card then does not fail over to it); none at all is
  // an error. The same card on this page gets the same tokens, so a retry sends the
  // same confirmation under the same idempotency key.
  var minted = {};

  function tokenizeCard(input) {
    var number = input.number.replace(/[\s-]/g, "");
    if (!/^\d{12,19}$/.test(number) || !luhn(number)) return Promise.reject(new Error(T.card_invalid));
    var expiry = /^(\d{2})\s*\/\s*(\d{2})$/.exec(input.expiry);
    if (!expiry || +expiry[1] < 1 || +expiry[1] > 12) return Promise.reject(new Error(T.card_expiry_invalid));
    if (!/^\d{3,4}$/.test(input.cvc)) return Promise.reject(new Error(T.card_cvc_invalid));
    var card = { number: number, expMonth: +expiry[1], expYear: 2000 + +expiry[2], cvc: input.cvc, name: input.name };
    var tokenizers = cardTokenizers(cardMethod());
    if (!tokenizers.length) return Promise.reject(new Error(T.card_no_tokenizer));
    var slot = [number, card.expMonth, card.expYear, card.cvc].join("|");
    if (minted[slot]) return Promise.resolve(minted[slot]);
    return Promise.all(tokenizers.map(function (tokenizer) {
      return tokenizerFunction(tokenizer)(card, tokenizer).then(
        function (token) { return { provider: tokenizer.provider, token: token }; },
        function (problem) { return { problem: problem }; });
    })).then(function (results) {
      var tokens = results.filter(function (result) { return result.token; });
      if (!tokens.length) throw results[0].problem;
      minted[slot] = tokens;
      return tokens;
    });
  }

  // The plans this amount qualifies for (`installmentPlans`), as a select; none, no select.
  function installmentChooser() {
    var plans = (cardMethod() || {}).installmentPlans || [];
    if (!plans.length) return null;
    var select = el("select", { id: "card-installments", name: "card-installments" },
      [el("option", { value: "", text: T.installments_none })].concat(plans.map(function (plan) {
        return el("option", { value: String(plan.count), text: planName(plan.count) });
      })));
    return el("div", {}, [el("label", { for: "card-installments", text: T.installments_label }), select]);
  }

  function planName(count) {
    return T.installments_months.replace("{count}", String(count));
  }

  function luhn(number) {
    var sum = 0;
    for (var i = 0; i < number.length; i++) {
      var digit = +number[number.length - 1 - i];
      if (i % 2) { digit *= 2; if (digit > 9) digit -= 9; }
      sum += digit;
    }
    return sum % 10 === 0;
  }

  // ---- talking to the API ------------------------------------------------------------

  function graphql(query, variables) {
    return fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + secret },
      body: JSON.stringify({ query: query, variables: variables }),
    }).then(function (response) { return response.json(); }).then(function (body) {
      if (body.errors && body.errors.length) {
        var code = body.errors[0].extensions && body.errors[0].extensions.code;
        var problem = new Error(body.errors[0].message);
        problem.code = code;
        throw problem;
      }
      return body.data;
    });
  }

  // The fragment holds `pi_…_secret_…` of this very intent, or the page shows nothing.
  function readSecret() {
    var value = decodeURIComponent(location.hash.slice(1));
    var shape = /^pi_[A-Za-z0-9]+_secret_[A-Za-z0-9]+$/;
    return shape.test(value) && value.indexOf(intentId + "_secret_") === 0 ? value : null;
  }

  function badLink() {
    document.title = T.bad_link_title + " · Cobro";
    show([el("section", { class: "notice", id: "bad-link" }, [
      el("h1", { text: T.bad_link_title }), el("p", { text: T.bad_link }),
    ])]);
  }

  // ---- the page over time ------------------------------------------------------------

  function render() {
    var nodes = [header()];
    var next = intent.nextAction && !FINAL[intent.status];
    if (mode === "voucher" && !(next && intent.nextAction.__typename === "OxxoVoucher") && !FINAL[intent.status]) {
      nodes.push(el("p", { text: T.no_voucher }));
    } else if (mode === "instructions" && !(next && /Instructions$/.test(intent.nextAction.__typename)) && !FINAL[intent.status]) {
      nodes.push(el("p", { text: T.no_instructions }));
    } else if (intent.status === "REQUIRES_PAYMENT_METHOD" && mode === "checkout") {
      nodes.push(methodChooser());
    } else {
      nodes.push(action());
      nodes.push(statusBox());
    }
    var focused = document.activeElement && document.activeElement.id;
    show(nodes);
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
    root.dataset.status = intent.status;
  }

  function update(next) {
    if (!next || (intent && next.version <= intent.version)) return;
    var changed = !intent || intent.status !== next.status ||
      JSON.stringify(intent.nextAction) !== JSON.stringify(next.nextAction);
    intent = next;
    if (changed) render();
  }

  function follow() {
    var notice = null;
    CobroLive.follow({
      secret: secret, query: FOLLOW,
      variables: function () { return { id: intentId, afterVersion: intent ? intent.version : null }; },
    }, {
      next: function (payload) {
        if (notice) { notice.remove(); notice = null; }
        if (payload.data && payload.data.paymentIntentUpdated) update(payload.data.paymentIntentUpdated);
      },
      done: function () {},
      reconnecting: function () {
        if (!notice) {
          notice = el("p", { class: "hint no-print", role: "status", text: T.reconnecting });
          root.appendChild(notice);
        }
      },
    });
  }

  // The other language's link keeps the fragment: without it the page has no secret.
  function keepFragmentOnLanguageLink() {
    var link = document.querySelector("a.lang");
    if (link && secret) link.setAttribute("href", link.getAttribute("href") + location.hash);
  }

  function start() {
    if (!secret) return badLink();
    keepFragmentOnLanguageLink();
    Promise.all([
      graphql(READ, { id: intentId }),
      fetch("/checkout/" + intentId + "/merchant", { headers: { Authorization: "Bearer " + secret } })
        .then(function (response) { return response.ok ? response.json() : { name: "" }; }),
    ]).then(function (answers) {
      var found = answers[0].paymentIntent;
      if (!found) return badLink();
      merchant = answers[1].name;
      return graphql(METHODS, { amount: found.amount.amount, currency: found.amount.currency })
        .then(function (data) {
          methods = data.paymentMethods;
          update(found);
          if (!FINAL[found.status]) follow();
        });
    }).catch(function (problem) {
      if (problem.code === "UNAUTHENTICATED" || problem.code === "FORBIDDEN") return badLink();
      show([el("p", { class: "error", role: "alert", text: T.error_generic })]);
    });
  }

  start();
})();
