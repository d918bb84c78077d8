from sequent.cli import main

main()
