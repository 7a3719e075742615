package webtest

// a11yJS is the script of Browser.A11y; it returns an array of strings.
const a11yJS = `(() => {
	const problems = [];
	const desc = el => {
		let s = el.tagName.toLowerCase();
		if (el.id) s += "#" + el.id;
		for (const c of el.classList) s += "." + c;
		return s;
	};
	const attr = (el, name) => (el.getAttribute(name) || "").trim();
	const labelledBy = el => attr(el, "aria-labelledby").split(/\s+/).filter(Boolean)
		.map(id => { const l = document.getElementById(id); return l ? l.textContent.trim() : ""; }).join(" ").trim();
	const named = el => attr(el, "aria-label") || labelledBy(el) || attr(el, "title");
	const visible = el => {
		const st = getComputedStyle(el);
		if (st.display === "none" || st.visibility === "hidden") return false;
		const r = el.getBoundingClientRect();
		return r.width > 0 && r.height > 0;
	};

	if (!attr(document.documentElement, "lang")) problems.push("html: missing lang attribute");

	const ids = new Map();
	for (const el of document.querySelectorAll("[id]")) ids.set(el.id, (ids.get(el.id) || 0) + 1);
	for (const [id, n] of ids) if (n > 1) problems.push('duplicate id "' + id + '" on ' + n + " elements");

	for (const el of document.querySelectorAll("input, select, textarea")) {
		const type = attr(el, "type").toLowerCase();
		if (["hidden", "submit", "button", "reset", "image"].includes(type)) continue;
		const labelled = el.labels && [...el.labels].some(l => l.textContent.trim());
		if (!labelled && !named(el)) problems.push(desc(el) + ": form control without label");
	}

	for (const el of document.querySelectorAll("img:not([alt])")) problems.push(desc(el) + ": image without alt");

	const clickable = 'button, a[href], [role="button"], [role="link"], input[type="submit"], input[type="button"], input[type="reset"]';
	for (const el of document.querySelectorAll(clickable)) {
		const imgAlt = [...el.querySelectorAll("img[alt]")].map(i => i.alt).join("").trim();
		const text = named(el) || (el.textContent || "").trim() || imgAlt || (el.tagName === "INPUT" ? attr(el, "value") : "");
		if (!text) problems.push(desc(el) + ": " + (el.matches('a[href], [role="link"]') ? "link" : "button") + " without accessible text");
	}

	const canvas = document.createElement("canvas");
	canvas.width = canvas.height = 1;
	const g = canvas.getContext("2d", {willReadFrequently: true});
	const rgba = css => {
		g.clearRect(0, 0, 1, 1);
		g.fillStyle = "rgba(0,0,0,0)";
		g.fillStyle = css;
		g.fillRect(0, 0, 1, 1);
		const d = g.getImageData(0, 0, 1, 1).data;
		return [d[0], d[1], d[2], d[3] / 255];
	};
	const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
	const background = el => {
		const layers = [];
		for (let e = el; e; e = e.parentElement) {
			const c = rgba(getComputedStyle(e).backgroundColor);
			if (c[3] > 0) layers.push(c);
			if (c[3] >= 1) break;
		}
		let bg = [255, 255, 255, 1];
		for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
		return bg;
	};
	const luminance = c => {
		const [r, g2, b] = c.slice(0, 3).map(v => {
			v /= 255;
			return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
		});
		return 0.2126 * r + 0.7152 * g2 + 0.0722 * b;
	};
	for (const el of document.body ? document.body.querySelectorAll("*") : []) {
		const hasText = [...el.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
		if (!hasText || !visible(el)) continue;
		const st = getComputedStyle(el);
		const bg = background(el);
		const fg = over(rgba(st.color), bg);
		const l1 = luminance(fg), l2 = luminance(bg);
		const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
		const size = parseFloat(st.fontSize);
		const large = size >= 24 || (size >= 18.66 && parseInt(st.fontWeight, 10) >= 700);
		const need = large ? 3 : 4.5;
		if (ratio < need) problems.push(desc(el) + ": contrast " + ratio.toFixed(2) + ":1 below " + need + ":1");
	}
	return problems;
})()`
