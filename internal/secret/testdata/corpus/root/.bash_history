apt-get update
mysql -u root -pnIrcHosPaz^69 -h db.internal shop
export GITHUB_TOKEN=ghp_iJMTvWKiFc73AKm1ktPCvrnf6MT9i26tIXNB
psql "postgresql://postgres:PBqxQnw5e0CCK!94@10.2.0.7:5432/shop"
git clone https://oauth2:glpat-lEZSZDxLm4vzqlbr9f2Z@gitlab.corp.internal/shop/app.git
curl -H "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6IkNiV2dsWmpDa3JFMzhyQ2FEc2V2IiwidHlwIjoiSldUIn0.eyJzdWIiOiJvcHMiLCJleHAiOjE5MDAwMDAwMDAsInNjb3BlIjoiYWRtaW4ifQ.HUbjK6vJi7aFBdmSyyXXPK9yVDFfiognp3PWV5wUI0QnLwLuylXX4DPOvgM2LKiEBzADdqKaQNSMMpT3ev-YfH" https://api.corp.internal/v1/me
ls -la
