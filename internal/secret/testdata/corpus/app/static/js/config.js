window.APP_CONFIG = {
  mapsKey: "AIzaogD9Sw9VAkg1UhxUrvH-jZjton9d6D0C5Md",
  apiBase: "https://api.shop.internal",
};
