from kalshi_analytics.cli import main

main()
